// Exit codes and names for Status codes.
#include "core/status.h"

namespace lifeboat {

int exit_code_for(Code code) {
  switch (code) {
    case Code::kOk: return 0;
    case Code::kPartial: return 3;
    case Code::kObjectiveMissed: return 4;
    case Code::kStale: return 5;
    case Code::kDrillFailed: return 6;
    case Code::kUnreachable: return 7;
    case Code::kRepoMissing: return 10;
    case Code::kLockFailed: return 11;
    case Code::kWrongPassword: return 12;
    case Code::kForbidden: return 13;
    case Code::kInterrupted: return 130;
    default: return 1;
  }
}

const char* code_name(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kFatal: return "fatal";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotFound: return "not_found";
    case Code::kAlreadyExists: return "already_exists";
    case Code::kIo: return "io";
    case Code::kUnavailable: return "unavailable";
    case Code::kCorrupt: return "corrupt";
    case Code::kPartial: return "partial";
    case Code::kRepoMissing: return "repository_missing";
    case Code::kLockFailed: return "lock_failed";
    case Code::kWrongPassword: return "wrong_password";
    case Code::kForbidden: return "forbidden";
    case Code::kInterrupted: return "interrupted";
    case Code::kObjectiveMissed: return "objective_missed";
    case Code::kStale: return "stale";
    case Code::kDrillFailed: return "drill_failed";
    case Code::kUnreachable: return "unreachable";
  }
  return "unknown";
}

}  // namespace lifeboat
