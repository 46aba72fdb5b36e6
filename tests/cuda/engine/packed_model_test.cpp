#include "cuda/engine/packed_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "reference/io/load_model.h"
#include "tests/common/test_env.h"

namespace kvfid::engine {
namespace {

std::vector<const PackedMatrix*> matrices(const PackedModel& p) {
  std::vector<const PackedMatrix*> all{&p.embedding, &p.classifier};
  for (const PackedLayer& l : p.layers)
    for (const PackedMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w3, &l.w2}) all.push_back(m);
  return all;
}

bool inside(std::span<const std::uint8_t> part, const std::uint8_t* begin, std::size_t size) {
  return part.data() >= begin && part.data() + part.size() <= begin + size;
}

// BF16 weights run as BF16 are the model file's bytes, read in place: every matrix is
// borrowed, lies inside the one mapping the model views, and equals the stored bytes;
// the model is held once.
TEST(PackedModel, StoredFormatIsBorrowedFromTheMapping) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-qwen2");
  const std::span<const std::uint8_t> whole = model.embedding.stored_bytes();
  const auto* owner = static_cast<const void*>(model.embedding.storage_owner().get());
  const PackedModel p = pack_model(model, weight_format_from_string("bf16", "test"));
  for (const PackedMatrix* m : matrices(p)) {
    EXPECT_TRUE(m->borrowed());
    EXPECT_EQ(m->bytes().size(), std::size_t(m->rows) * std::size_t(m->cols) * 2);
  }
  EXPECT_TRUE(std::equal(whole.begin(), whole.end(), p.embedding.bytes().begin(), p.embedding.bytes().end()));
  EXPECT_EQ(p.embedding.bytes().data(), whole.data());
  const LayerWeights& l0 = model.layers[0];
  EXPECT_EQ(p.layers[0].w2.bytes().data(), l0.w2.stored_bytes().data());
  EXPECT_EQ(l0.w2.storage_owner().get(), owner);  // every matrix views one mapping
  EXPECT_NE(p.classifier.bytes().data(), p.embedding.bytes().data());  // untied
}

// Another format is a copy the packing owns (rounded from the stored values).
TEST(PackedModel, OtherFormatIsOwned) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-qwen2");
  const std::span<const std::uint8_t> file = model.embedding.stored_bytes();
  for (const char* format : {"f16", "f32"}) {
    const PackedModel p = pack_model(model, weight_format_from_string(format, "test"));
    for (const PackedMatrix* m : matrices(p)) {
      EXPECT_FALSE(m->borrowed()) << format;
      EXPECT_FALSE(inside(m->bytes(), file.data(), file.size())) << format;
    }
  }
}

// A tied classifier is the embedding, whether borrowed (F16 file run as F16) or packed
// (run as BF16): the same bytes, stored once.
TEST(PackedModel, TiedClassifierSharesTheEmbedding) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-mqa");
  ASSERT_TRUE(model.classifier.same_view(model.embedding));
  for (const char* format : {"f16", "bf16"}) {
    const PackedModel p = pack_model(model, weight_format_from_string(format, "test"));
    EXPECT_EQ(p.classifier.bytes().data(), p.embedding.bytes().data()) << format;
    EXPECT_EQ(p.classifier.borrowed(), std::string(format) == "f16");
  }
}

// Elements at an address not aligned to their width (a safetensors header may leave any
// offset) are copied, not borrowed: the kernels load them as typed elements. The copy
// holds the same bytes.
TEST(PackedModel, MisalignedStoredElementsAreCopied) {
  auto buffer = std::make_shared<std::vector<std::uint8_t>>(1 + 3 * 16 * 2);
  for (std::size_t i = 0; i < buffer->size(); ++i) (*buffer)[i] = std::uint8_t(i * 37 % 127);  // finite BF16s
  const Matrix odd = Matrix::view(3, 16, WeightType::bf16, buffer->data() + 1, buffer);
  const Matrix even = Matrix::view(3, 16, WeightType::bf16, buffer->data(), buffer);
  const WeightFormat bf16 = weight_format_from_string("bf16", "test");
  const PackedMatrix copied = pack_matrix(odd, bf16, "odd");
  EXPECT_FALSE(copied.borrowed());
  EXPECT_TRUE(std::equal(copied.bytes().begin(), copied.bytes().end(), buffer->begin() + 1, buffer->end()));
  const PackedMatrix borrowed = pack_matrix(even, bf16, "even");
  EXPECT_TRUE(borrowed.borrowed());
  EXPECT_EQ(borrowed.bytes().data(), buffer->data());
}

}  // namespace
}  // namespace kvfid::engine
