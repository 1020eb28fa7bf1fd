#include "cli/prompter.h"

#include <gtest/gtest.h>

namespace dlab {
namespace {

TEST(PrompterTest, FirstLineDropsTheLineEnd) {
  EXPECT_EQ(FirstLine("s3cret\n"), "s3cret");
  EXPECT_EQ(FirstLine("s3cret\r\nnext line\n"), "s3cret");
  EXPECT_EQ(FirstLine("no line end"), "no line end");
  EXPECT_EQ(FirstLine(" spaces kept \n"), " spaces kept ");
  EXPECT_EQ(FirstLine(""), "");
}

}  // namespace
}  // namespace dlab
