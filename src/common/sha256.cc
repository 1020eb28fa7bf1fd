#include "common/sha256.h"

#include <openssl/evp.h>

#include "common/check.h"

namespace dlab {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  DLAB_CHECK(ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(absl::string_view data) { EVP_DigestUpdate(ctx_, data.data(), data.size()); }

std::string Sha256::SnapshotId() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, digest, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    id.push_back(kHex[digest[i] >> 4]);
    id.push_back(kHex[digest[i] & 0xf]);
  }
  return id;
}

std::string SnapshotIdOf(absl::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.SnapshotId();
}

}  // namespace dlab
