#include "common/sha256.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace dlab {
namespace {

std::string Hex(const unsigned char* data, unsigned int n) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(data), n));
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
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  DLAB_CHECK(EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) == 1);
  return Hex(digest, len);
}

std::string HmacSha256(absl::string_view key, absl::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  DLAB_CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                  reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
                  &len) != nullptr);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string HmacSha256Hex(absl::string_view key, absl::string_view message) {
  return absl::BytesToHexString(HmacSha256(key, message));
}

}  // namespace dlab
