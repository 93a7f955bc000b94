#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace fs {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}
}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }
void SetLogJson(bool json) { g_json = json; }

void InitLogFromEnv() {
  const char* v = std::getenv("FILESEARCH_LOG_LEVEL");
  if (!v) v = std::getenv("LOG_LEVEL");
  if (!v) return;
  std::string s(v);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "debug") SetLogLevel(LogLevel::kDebug);
  else if (s == "info") SetLogLevel(LogLevel::kInfo);
  else if (s == "warn" || s == "warning") SetLogLevel(LogLevel::kWarn);
  else if (s == "error") SetLogLevel(LogLevel::kError);
}

std::string JsonQuote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

void LogMessage(LogLevel level, std::string_view message) { LogWithFields(level, message, {}); }

void LogWithFields(LogLevel level, std::string_view message, std::span<const LogField> fields) {
  if (static_cast<int>(level) < g_level.load()) return;
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[40];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line;
  if (g_json) {
    line = std::string("{\"ts\":\"") + ts + "\",\"level\":\"" + LevelName(level) + "\",\"msg\":" + JsonQuote(message);
    for (const LogField& f : fields) line += "," + JsonQuote(f.key) + ":" + JsonQuote(f.value);
    line += "}\n";
  } else {
    line = std::string(LevelName(level)) + ": " + std::string(message);
    for (const LogField& f : fields) line += " " + std::string(f.key) + "=" + std::string(f.value);
    line += "\n";
  }
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace fs
