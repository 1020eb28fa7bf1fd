#include "common/sha256.h"

#include <openssl/evp.h>

#include <cstring>
#include <initializer_list>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace dlab {
namespace {

std::string Hex(const unsigned char* data, unsigned int n) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(data), n));
}

// SHA-256 fetched once: OpenSSL 3 otherwise looks the algorithm up on every call, which costs
// more than hashing a request's few hundred bytes.
const EVP_MD* Md() {
  static const EVP_MD* md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    DLAB_CHECK(fetched != nullptr);
    return fetched;
  }();
  return md;
}

// A digest context per thread, reused.
EVP_MD_CTX* ThreadContext() {
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                           &EVP_MD_CTX_free);
  return ctx.get();
}

// SHA-256 of the concatenated parts into out (32 bytes).
void Digest(std::initializer_list<absl::string_view> parts, unsigned char* out) {
  EVP_MD_CTX* ctx = ThreadContext();
  DLAB_CHECK(EVP_DigestInit_ex(ctx, Md(), nullptr) == 1);
  for (absl::string_view p : parts) EVP_DigestUpdate(ctx, p.data(), p.size());
  unsigned int len = 0;
  DLAB_CHECK(EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 32);
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  DLAB_CHECK(ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(absl::string_view data) { EVP_DigestUpdate(ctx_, data.data(), data.size()); }

std::string Sha256::SnapshotId() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, digest, &len);
  return absl::StrCat("sha256:", Hex(digest, len));
}

std::string SnapshotIdOf(absl::string_view data) {
  return absl::StrCat("sha256:", Sha256Hex(data));
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[32];
  Digest({data}, digest);
  return Hex(digest, 32);
}

// RFC 2104 over SHA-256 (block size 64), with the pre-fetched digest: the same bytes as
// OpenSSL's HMAC(), which fetches the algorithm anew on each call.
std::string HmacSha256(absl::string_view key, absl::string_view message) {
  constexpr size_t kBlock = 64;
  unsigned char k[kBlock] = {};
  if (key.size() > kBlock) {
    Digest({key}, k);
  } else {
    std::memcpy(k, key.data(), key.size());
  }
  char ipad[kBlock], opad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) {
    ipad[i] = static_cast<char>(k[i] ^ 0x36);
    opad[i] = static_cast<char>(k[i] ^ 0x5c);
  }
  unsigned char inner[32], mac[32];
  Digest({absl::string_view(ipad, kBlock), message}, inner);
  Digest({absl::string_view(opad, kBlock),
          absl::string_view(reinterpret_cast<const char*>(inner), 32)},
         mac);
  return std::string(reinterpret_cast<const char*>(mac), 32);
}

std::string HmacSha256Hex(absl::string_view key, absl::string_view message) {
  return absl::BytesToHexString(HmacSha256(key, message));
}

}  // namespace dlab
