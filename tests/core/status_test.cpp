// Status/Result behaviour and exit-code mapping.
#include "core/status.h"

#include <gtest/gtest.h>

namespace lifeboat {

TEST(Status, OkIsFreeAndEmpty) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.message(), "");
}

TEST(Status, ExitCodesAreTheDocumentedOnes) {
  EXPECT_EQ(exit_code_for(Code::kOk), 0);
  EXPECT_EQ(exit_code_for(Code::kFatal), 1);
  EXPECT_EQ(exit_code_for(Code::kCorrupt), 1);
  EXPECT_EQ(exit_code_for(Code::kPartial), 3);
  EXPECT_EQ(exit_code_for(Code::kRepoMissing), 10);
  EXPECT_EQ(exit_code_for(Code::kLockFailed), 11);
  EXPECT_EQ(exit_code_for(Code::kWrongPassword), 12);
  EXPECT_EQ(exit_code_for(Code::kInterrupted), 130);
}

Result<int> half(int x) {
  if (x % 2) return Error(Code::kInvalidArgument, "odd");
  return x / 2;
}

Status quarter(int x, int& out) {
  LB_ASSIGN_OR_RETURN(int h, half(x));
  LB_ASSIGN_OR_RETURN(out, half(h));
  return Status::ok();
}

TEST(Status, MacrosPropagateErrorsWithContext) {
  int out = 0;
  EXPECT_TRUE(quarter(8, out).is_ok());
  EXPECT_EQ(out, 2);
  Status s = quarter(6, out);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.with_context("dividing").message(), "dividing: odd");
}

}  // namespace lifeboat
