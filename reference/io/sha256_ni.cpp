// compress_hardware (sha256_blocks.h) on the x86 SHA extensions. The instructions keep
// the eight working variables as two vectors, ABEF and CDGH (A in the high lane), and do
// two rounds per SHA256RNDS2 from the message words plus round constants in its third
// operand's low two lanes; SHA256MSG1/MSG2 compute the schedule W[i] = W[i-16] +
// s0(W[i-15]) + W[i-7] + s1(W[i-2]) four words at a time, the W[i-7] term added between
// them. Nothing here is approximate: it is the same integer function as the portable
// code, which the tests compare it with.
#include "reference/io/sha256_blocks.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

namespace kvfid::ref::sha256_blocks {

// From CPUID itself: clang's __builtin_cpu_supports has no "sha". Leaf 1 ECX bit 19 is
// SSE4.1, leaf 7 (subleaf 0) EBX bit 29 the SHA extensions (Intel SDM vol. 2A, CPUID).
bool hardware_available() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 19))) return false;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (b & (1u << 29)) != 0;
}

__attribute__((target("sha,sse4.1"))) void compress_hardware(State& state, const std::uint8_t* blocks, std::size_t count) {
  // The message is big-endian 32-bit words: reverse the bytes of each lane.
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  // state lanes 0..3 = H0..H3 (A B C D), 4..7 = H4..H7 (E F G H) -> ABEF and CDGH, high lane first.
  const __m128i abcd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state.data()));
  const __m128i efgh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state.data() + 4));
  const __m128i cdab = _mm_shuffle_epi32(abcd, 0xB1);
  const __m128i hgfe = _mm_shuffle_epi32(efgh, 0x1B);
  __m128i abef = _mm_alignr_epi8(cdab, hgfe, 8);
  __m128i cdgh = _mm_blend_epi16(hgfe, cdab, 0xF0);
  for (std::size_t b = 0; b < count; ++b) {
    const std::uint8_t* block = blocks + 64 * b;
    const __m128i abef_in = abef, cdgh_in = cdgh;
    __m128i w[4];  // w[g % 4] = W[4g .. 4g+3]: the last 16 schedule words
    for (int g = 0; g < 16; ++g) {
      __m128i words;
      if (g < 4) {
        words = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * g)), byte_swap);
      } else {
        const __m128i w16 = w[g % 4], w12 = w[(g + 1) % 4], w8 = w[(g + 2) % 4], w4 = w[(g + 3) % 4];
        words = _mm_sha256msg1_epu32(w16, w12);                    // W[i-16] + s0(W[i-15])
        words = _mm_add_epi32(words, _mm_alignr_epi8(w4, w8, 4));  // + W[i-7]: words 4g-7 .. 4g-4
        words = _mm_sha256msg2_epu32(words, w4);                   // + s1(W[i-2])
      }
      w[g % 4] = words;
      const __m128i k = _mm_add_epi32(words, _mm_loadu_si128(reinterpret_cast<const __m128i*>(kRound + 4 * g)));
      // Two rounds turn ABEF into the next CDGH: each call's result goes where the
      // state it consumed as CDGH was, so after the pair the names hold their own again.
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, k);                           // rounds 4g, 4g+1
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(k, 0x0E));  // rounds 4g+2, 4g+3
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
  }
  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state.data()), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state.data() + 4), _mm_alignr_epi8(dchg, feba, 8));
}

}  // namespace kvfid::ref::sha256_blocks

#else  // not x86-64: the portable code serves

namespace kvfid::ref::sha256_blocks {

bool hardware_available() { return false; }
void compress_hardware(State& state, const std::uint8_t* blocks, std::size_t count) { compress_portable(state, blocks, count); }

}  // namespace kvfid::ref::sha256_blocks

#endif
