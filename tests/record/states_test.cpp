// The one table of experiment and trial state names: the stored names are the ones det has
// always written (experiment.json, det.db and runner snapshots of older versions load).

#include "det/record/states.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "det/util/error.h"

namespace det::record {
namespace {

TEST(States, StoredNamesAreTheOnesAlwaysWritten) {
  const std::vector<std::pair<RunState, std::string>> runs = {
      {RunState::kActive, "ACTIVE"},   {RunState::kCompleted, "COMPLETED"},
      {RunState::kStopped, "STOPPED"}, {RunState::kError, "ERROR"},
      {RunState::kPaused, "PAUSED"},   {RunState::kCanceled, "CANCELED"}};
  for (const auto& [state, name] : runs) {
    EXPECT_EQ(to_string(state), name);
    EXPECT_EQ(parse_run_state(name), state) << name;
  }
  const std::vector<std::pair<TrialStatus, std::string>> trials = {
      {TrialStatus::kActive, "ACTIVE"},       {TrialStatus::kPaused, "PAUSED"},
      {TrialStatus::kQueued, "QUEUED"},       {TrialStatus::kRunning, "RUNNING"},
      {TrialStatus::kCompleted, "COMPLETED"}, {TrialStatus::kStopped, "STOPPED"},
      {TrialStatus::kError, "ERROR"},         {TrialStatus::kInvalidHP, "INVALID_HP"},
      {TrialStatus::kCanceled, "CANCELED"}};
  for (const auto& [status, name] : trials) {
    EXPECT_EQ(to_string(status), name);
    EXPECT_EQ(parse_trial_status(name), status) << name;
  }
}

TEST(States, UnknownNamesAreRefusedWithWhereAndTheValidNames) {
  EXPECT_FALSE(parse_run_state("QUEUED"));  // a trial's state, not an experiment's
  EXPECT_FALSE(parse_trial_status("completed"));
  EXPECT_FALSE(parse_trial_status(""));
  try {
    trial_status_of("DONE", "det.db: trial 3");
    FAIL() << "no throw";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("det.db: trial 3"), std::string::npos) << what;
    EXPECT_NE(what.find("\"DONE\""), std::string::npos) << what;
    EXPECT_NE(what.find(trial_status_names()), std::string::npos) << what;
  }
  EXPECT_THROW(run_state_of("RUNNING", "experiment.json"), Error);
  EXPECT_EQ(run_state_names(), "ACTIVE, COMPLETED, STOPPED, ERROR, PAUSED, CANCELED");
}

TEST(States, WhatGoesOnAndWhatIsOver) {
  EXPECT_TRUE(goes_on(RunState::kActive));
  EXPECT_TRUE(goes_on(RunState::kPaused));
  EXPECT_FALSE(goes_on(RunState::kStopped));
  for (RunState s : {RunState::kCompleted, RunState::kError, RunState::kCanceled})
    EXPECT_TRUE(is_final(s)) << to_string(s);
  for (RunState s : {RunState::kActive, RunState::kPaused, RunState::kStopped})
    EXPECT_FALSE(is_final(s)) << to_string(s);
  EXPECT_TRUE(is_final(TrialStatus::kCanceled));
  EXPECT_FALSE(is_final(TrialStatus::kStopped));
}

TEST(States, FinalAndStored) {
  for (auto s : {TrialStatus::kCompleted, TrialStatus::kError, TrialStatus::kInvalidHP})
    EXPECT_TRUE(is_final(s)) << to_string(s);
  for (auto s : {TrialStatus::kActive, TrialStatus::kPaused, TrialStatus::kQueued,
                 TrialStatus::kRunning, TrialStatus::kStopped})
    EXPECT_FALSE(is_final(s)) << to_string(s);  // a STOPPED trial resumes
  EXPECT_EQ(stored_status(TrialStatus::kRunning), TrialStatus::kActive);
  EXPECT_EQ(stored_status(TrialStatus::kPaused), TrialStatus::kPaused);
}

}  // namespace
}  // namespace det::record
