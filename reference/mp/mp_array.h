#pragma once
// A fixed-size array of MPFR numbers of one precision, allocated once: the structs in
// one block and every significand in another (MPFR's custom interface), so a kernel
// walks contiguous memory and no MPFR call ever allocates a significand.
#include <cstddef>
#include <memory>
#include <vector>

#include <mpfr.h>

namespace kvfid::ref {

class MpArray {
 public:
  MpArray() = default;
  MpArray(std::size_t size, mpfr_prec_t precision);  // every element +0
  MpArray(MpArray&&) noexcept = default;
  MpArray& operator=(MpArray&&) noexcept = default;
  MpArray(const MpArray&) = delete;
  MpArray& operator=(const MpArray&) = delete;

  std::size_t size() const { return numbers_.size(); }
  mpfr_prec_t precision() const { return precision_; }
  mpfr_ptr operator[](std::size_t i) { return &numbers_[i]; }
  mpfr_srcptr operator[](std::size_t i) const { return &numbers_[i]; }
  mpfr_ptr data() { return numbers_.data(); }
  mpfr_srcptr data() const { return numbers_.data(); }

 private:
  mpfr_prec_t precision_ = MPFR_PREC_MIN;
  std::unique_ptr<mp_limb_t[]> significands_;  // [size, limbs per number]
  std::vector<__mpfr_struct> numbers_;         // [size], pointing into significands_
};

// Exact float64 values of an array (each element is first rounded to nearest by MPFR).
std::vector<double> to_doubles(const MpArray& a);

}  // namespace kvfid::ref
