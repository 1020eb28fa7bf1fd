#include "common/job_token.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/sha256.h"

namespace dlab {

absl::StatusOr<JobTokens> JobTokens::LoadOrCreate(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (text.ok()) {
    std::string secret(absl::StripAsciiWhitespace(*text));
    if (secret.size() < 32) {
      return absl::DataLossError(absl::StrCat(path, " holds no usable secret (too short)"));
    }
    return JobTokens(std::move(secret));
  }
  if (!absl::IsNotFound(text.status())) return text.status();
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return absl::InternalError("no random bytes");
  std::string secret = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
  // Created 0600 before anything is written to it.
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  std::string line = secret + "\n";
  bool ok =
      write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) return absl::InternalError(absl::StrCat("cannot write ", path));
  return JobTokens(std::move(secret));
}

std::string JobTokens::Token(int64_t job_id) const {
  return HmacSha256Hex(secret_, absl::StrCat("dlab-job:", job_id));
}

bool JobTokens::Verify(int64_t job_id, absl::string_view token) const {
  std::string want = Token(job_id);
  return token.size() == want.size() && CRYPTO_memcmp(token.data(), want.data(), want.size()) == 0;
}

}  // namespace dlab
