#include "auth/secrets.h"

#include <gtest/gtest.h>

namespace dlab::auth {
namespace {

TEST(PasswordTest, HashVerifiesOnlyTheRightPassword) {
  std::string hash = HashPassword("correct horse");
  EXPECT_TRUE(hash.starts_with("scrypt$15$8$1$"));
  EXPECT_TRUE(VerifyPassword("correct horse", hash));
  EXPECT_FALSE(VerifyPassword("correct horsE", hash));
  EXPECT_NE(HashPassword("correct horse"), hash);  // salted
  std::string tampered = hash;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyPassword("correct horse", tampered));
  EXPECT_FALSE(VerifyPassword("x", "scrypt$30$8$1$AAAA$AAAA"));  // refuses absurd costs
  EXPECT_FALSE(VerifyPassword("x", "plain"));
}

TEST(SecretBoxTest, SealsAndDetectsTamperingAndOtherMasters) {
  SecretBox box("master-1");
  std::string sealed = box.Seal("the secret");
  EXPECT_EQ(sealed.find("the secret"), std::string::npos);
  EXPECT_EQ(*box.Open(sealed), "the secret");
  EXPECT_NE(box.Seal("the secret"), sealed);  // a fresh nonce each time
  EXPECT_EQ(SecretBox("master-2").Open(sealed).status().code(), absl::StatusCode::kDataLoss);
  std::string tampered = sealed;
  tampered[10] = tampered[10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(box.Open(tampered).ok());
  EXPECT_FALSE(box.Open("v1:").ok());
  EXPECT_EQ(*box.Open(box.Seal("")), "");
}

TEST(AccessKeyTest, Format) {
  AccessKey a = NewAccessKey();
  AccessKey b = NewAccessKey();
  EXPECT_EQ(a.id.size(), 20u);
  EXPECT_TRUE(a.id.starts_with("AK"));
  EXPECT_EQ(a.secret.size(), 40u);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.secret, b.secret);
}

}  // namespace
}  // namespace dlab::auth
