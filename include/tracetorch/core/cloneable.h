#pragma once
// tt::Cloneable<Derived, Base>: deep copies of tracetorch layers, as torch::nn::Cloneable gives
// LibTorch's own modules, so that clone() works on any model that holds tt layers (target
// networks, ensembles, data-parallel replicas).
//
//   class FooImpl : public tt::Cloneable<FooImpl> {          // Base defaults to tt::Layer
//    public:
//     explicit FooImpl(FooOptions o) : Cloneable("my.Foo", o.n()), options_(o) { reset(); }
//     void reset() override;  // registers every parameter, buffer, child and state anew
//   };
//
// Contract:
// - reset() (re)creates everything with reference semantics: it starts with begin_reset(), then
//   registers parameters, buffers, children and states from the options, and re-creates every
//   other tensor member (caches, preallocated buffers). Calling it re-initialises the layer.
// - clone(device) copy-constructs Derived, calls reset() on the copy, then copies into it every
//   parameter and buffer by key (recursively, requires_grad kept), the compiled form of every tt
//   layer, the exact-path flag and every hidden state (cloned). The copy shares no tensor with the
//   original: both continue a stream identically and independently. With a device, everything
//   goes there.
// - A tt layer held inside a torch::nn::Cloneable module (or a Sequential, ModuleList, ...) is
//   cloned with it.
// Throws tt::Error when reset() does not recreate the original's keys.
// Thread safety: clone() reads the original; do not run it concurrently with a forward.
#include <torch/torch.h>

#include <memory>

#include "tracetorch/core/error.h"
#include "tracetorch/core/layer.h"

namespace tt {

namespace detail {
// Copies parameters, buffers, compiled forms and states of `from` into `to`, a freshly reset
// module of the same type (see the contract above).
void copy_into_clone(const torch::nn::Module& from, torch::nn::Module& to, const c10::optional<torch::Device>& device);
}  // namespace detail

template <typename Derived, typename Base = Layer>
class Cloneable : public Base {
 public:
  using Base::Base;

  // (Re)creates every parameter, buffer, child module and state; see the contract above.
  virtual void reset() = 0;

  std::shared_ptr<torch::nn::Module> clone(const c10::optional<torch::Device>& device = c10::nullopt) const override {
    torch::NoGradGuard no_grad;
    auto copy = std::make_shared<Derived>(static_cast<const Derived&>(*this));
    copy->reset();
    detail::copy_into_clone(*this, *copy, device);
    return copy;
  }

 private:
  // Called by LibTorch's containers and Cloneable parents to clone a registered child in place.
  void clone_(torch::nn::Module& other, const c10::optional<torch::Device>& device) final {
    auto copy = std::dynamic_pointer_cast<Derived>(other.clone(device));
    if (!copy) throw Error(this->name() + ": clone: the module to copy from is of another type");
    static_cast<Derived&>(*this) = std::move(*copy);
  }
};

}  // namespace tt
