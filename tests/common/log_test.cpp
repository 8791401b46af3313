// log::configure (common/log.hpp): LOG_LEVEL as the reference reads it
// (docs/protocol.md#other-variables): pino's six levels, anything else the default.
#include "common/log.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using log::Level;

// The lowest level configure() left enabled.
Level lowest_enabled() {
  for (Level level : {Level::trace, Level::debug, Level::info, Level::warn, Level::error, Level::fatal}) {
    if (log::enabled(level)) return level;
  }
  return Level::fatal;
}

class LogLevel : public ::testing::Test {
 protected:
  ~LogLevel() override { log::set_level(Level::info); }
};

TEST_F(LogLevel, PinosLevelsAreTakenAsTheyAre) {
  log::configure("test", "warn", "production");
  EXPECT_EQ(lowest_enabled(), Level::warn);
  log::configure("test", "trace", "production");
  EXPECT_EQ(lowest_enabled(), Level::trace);
}

TEST_F(LogLevel, UnsetIsDebugInDevelopmentAndInfoElsewhere) {
  log::configure("test", "", "development");
  EXPECT_EQ(lowest_enabled(), Level::debug);
  log::configure("test", "", "production");
  EXPECT_EQ(lowest_enabled(), Level::info);
}

TEST_F(LogLevel, AnUnknownLevelIsTheEnvironmentsDefault) {
  log::configure("test", "verbose", "production");
  EXPECT_EQ(lowest_enabled(), Level::info);
  log::configure("test", "INFO", "development");
  EXPECT_EQ(lowest_enabled(), Level::debug);
  log::configure("test", "error", "production");
  log::configure("test", "silly", "production");
  EXPECT_EQ(lowest_enabled(), Level::info);
}

}  // namespace
}  // namespace sluice
