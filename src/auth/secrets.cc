#include "auth/secrets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/check.h"
#include "common/sha256.h"

namespace dlab::auth {
namespace {

constexpr int kLogN = 15;
constexpr int kR = 8;
constexpr int kP = 1;
constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  DLAB_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) == 1);
  return out;
}

bool Scrypt(absl::string_view password, absl::string_view salt, int log_n, int r, int p,
            std::string* key) {
  key->assign(kKeyBytes, '\0');
  return EVP_PBE_scrypt(password.data(), password.size(),
                        reinterpret_cast<const unsigned char*>(salt.data()), salt.size(),
                        uint64_t{1} << log_n, r, p, /*maxmem=*/uint64_t{256} << 20,
                        reinterpret_cast<unsigned char*>(key->data()), key->size()) == 1;
}

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

}  // namespace

std::string HashPassword(absl::string_view password) {
  std::string salt = RandomBytes(16);
  std::string key;
  DLAB_CHECK(Scrypt(password, salt, kLogN, kR, kP, &key));
  return absl::StrCat("scrypt$", kLogN, "$", kR, "$", kP, "$", absl::Base64Escape(salt), "$",
                      absl::Base64Escape(key));
}

bool VerifyPassword(absl::string_view password, absl::string_view encoded) {
  std::vector<absl::string_view> parts = absl::StrSplit(encoded, '$');
  int log_n = 0, r = 0, p = 0;
  std::string salt, want;
  if (parts.size() != 6 || parts[0] != "scrypt" || !absl::SimpleAtoi(parts[1], &log_n) ||
      !absl::SimpleAtoi(parts[2], &r) || !absl::SimpleAtoi(parts[3], &p) ||
      !absl::Base64Unescape(parts[4], &salt) || !absl::Base64Unescape(parts[5], &want) ||
      log_n < 10 || log_n > 20 || r < 1 || r > 32 || p < 1 || p > 16 || want.size() != kKeyBytes) {
    return false;
  }
  std::string got;
  if (!Scrypt(password, salt, log_n, r, p, &got)) return false;
  return CRYPTO_memcmp(got.data(), want.data(), kKeyBytes) == 0;
}

SecretBox::SecretBox(absl::string_view master_secret)
    : key_(HmacSha256(master_secret, "dlab secret box v1")) {}

std::string SecretBox::Seal(absl::string_view plaintext) const {
  std::string nonce = RandomBytes(kNonceBytes);
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  std::string out = nonce;
  out.resize(kNonceBytes + plaintext.size() + kTagBytes);
  auto* data = reinterpret_cast<unsigned char*>(out.data());
  int n = 0;
  DLAB_CHECK(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                                reinterpret_cast<const unsigned char*>(key_.data()),
                                reinterpret_cast<const unsigned char*>(nonce.data())) == 1);
  DLAB_CHECK(EVP_EncryptUpdate(ctx.get(), data + kNonceBytes, &n,
                               reinterpret_cast<const unsigned char*>(plaintext.data()),
                               static_cast<int>(plaintext.size())) == 1);
  int tail = 0;
  DLAB_CHECK(EVP_EncryptFinal_ex(ctx.get(), data + kNonceBytes + n, &tail) == 1);
  DLAB_CHECK(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                                 data + kNonceBytes + plaintext.size()) == 1);
  return absl::StrCat("v1:", absl::Base64Escape(out));
}

absl::StatusOr<std::string> SecretBox::Open(absl::string_view sealed) const {
  std::string raw;
  if (!absl::ConsumePrefix(&sealed, "v1:") || !absl::Base64Unescape(sealed, &raw) ||
      raw.size() < kNonceBytes + kTagBytes) {
    return absl::DataLossError("sealed secret: not a v1 sealed value");
  }
  size_t n = raw.size() - kNonceBytes - kTagBytes;
  std::string plain(n, '\0');
  auto* data = reinterpret_cast<unsigned char*>(raw.data());
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok =
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key_.data()), data) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                        data + kNonceBytes, static_cast<int>(n)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, data + kNonceBytes + n) == 1;
  int tail = 0;
  if (!ok || EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len,
                                 &tail) != 1) {
    return absl::DataLossError(
        "sealed secret: authentication failed (altered, or sealed under another master secret)");
  }
  return plain;
}

std::string RandomToken(size_t n) { return absl::WebSafeBase64Escape(RandomBytes(n)); }

AccessKey NewAccessKey() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string bytes = RandomBytes(18);
  std::string id = "AK";
  for (unsigned char b : bytes) id.push_back(kAlphabet[b % 36]);
  return {.id = std::move(id), .secret = RandomToken(30)};
}

bool IsAccessKeyId(absl::string_view id) {
  if (id.size() != 20 || id.substr(0, 2) != "AK") return false;
  for (char c : id.substr(2)) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

}  // namespace dlab::auth
