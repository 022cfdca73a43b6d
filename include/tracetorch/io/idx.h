#pragma once
// Reader for the IDX format of MNIST / Fashion-MNIST (optionally gzip-compressed, as Debian's
// dataset-fashion-mnist ships them). Throws tt::FileError naming the path on any problem.
// Thread safety: no shared state.
#include <torch/torch.h>

#include <string>

namespace tt::io {

// The whole file as a tensor: uint8 / int8 / int16 / int32 / float32 / float64 per the header,
// shaped by its dimensions (e.g. [60000, 28, 28] for images, [60000] for labels).
torch::Tensor load_idx(const std::string& path);

}  // namespace tt::io
