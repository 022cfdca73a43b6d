#pragma once
// The message of the E a callable throws; a test failure if it throws nothing or something else.
#include <gtest/gtest.h>

#include <exception>
#include <string>

template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "nothing was thrown";
  return "";
}
