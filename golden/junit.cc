// ParseJunit: JUnit XML reports of the common test runners.
#include <fmt/core.h>

#include <pugixml.hpp>

#include <string_view>
#include <unordered_map>
#include <vector>

#include "golden/test_run.h"
#include "golden/utf8.h"

namespace crucible::golden {

namespace {

using v1::TestOutcome;

constexpr size_t kMaxMessageBytes = 1024;

bool Is(const pugi::xml_node& node, const char* name) {
  return std::string_view(node.name()) == name;
}

// Higher is worse; a test reported twice keeps its worst outcome.
int Severity(TestOutcome::Status s) {
  switch (s) {
    case TestOutcome::PASSED:
      return 1;
    case TestOutcome::SKIPPED:
      return 2;
    case TestOutcome::FAILED:
      return 3;
    case TestOutcome::ERROR:
      return 4;
    default:
      return 0;
  }
}

std::string Message(const pugi::xml_node& node) {
  std::string_view text = node.attribute("message").value();
  if (text.empty()) text = node.text().get();
  if (text.size() > kMaxMessageBytes) text = text.substr(0, kMaxMessageBytes);
  return internal::ToValidUtf8(text);
}

TestOutcome ParseTestcase(const pugi::xml_node& tc) {
  TestOutcome out;
  std::string_view classname = tc.attribute("classname").value();
  std::string_view name = tc.attribute("name").value();
  std::string id = classname.empty() ? std::string(name) : fmt::format("{}::{}", classname, name);
  out.set_id(internal::ToValidUtf8(id));
  out.set_time_s(tc.attribute("time").as_double(0.0));

  pugi::xml_node error = tc.child("error");
  pugi::xml_node failure = tc.child("failure");
  pugi::xml_node skipped = tc.child("skipped");
  // GoogleTest marks disabled tests status="notrun"; ctest uses status="fail"
  // and status="notrun"/"disabled".
  std::string_view status = tc.attribute("status").value();
  std::string_view result = tc.attribute("result").value();
  if (error) {
    out.set_status(TestOutcome::ERROR);
    out.set_message(Message(error));
  } else if (failure) {
    out.set_status(TestOutcome::FAILED);
    out.set_message(Message(failure));
  } else if (status == "fail" || status == "failed") {
    out.set_status(TestOutcome::FAILED);
  } else if (skipped) {
    out.set_status(TestOutcome::SKIPPED);
    out.set_message(Message(skipped));
  } else if (status == "notrun" || status == "disabled" || status == "skipped" ||
             result == "skipped" || result == "suppressed") {
    out.set_status(TestOutcome::SKIPPED);
  } else {
    out.set_status(TestOutcome::PASSED);
  }
  return out;
}

}  // namespace

Result<std::vector<v1::TestOutcome>> ParseJunit(std::string_view xml) {
  pugi::xml_document doc;
  pugi::xml_parse_result parsed =
      doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_auto);
  if (!parsed) {
    return Fail(Code::kCorruption, fmt::format("JUnit report does not parse: {} at byte {}",
                                               parsed.description(), parsed.offset));
  }
  pugi::xml_node root = doc.document_element();
  if (!Is(root, "testsuites") && !Is(root, "testsuite")) {
    return Fail(Code::kCorruption,
                fmt::format("JUnit report has no testsuite element (the root element is <{}>)",
                            internal::ToValidUtf8(root.name())));
  }

  std::vector<TestOutcome> outcomes;
  std::unordered_map<std::string, size_t> index;  // id -> position in outcomes
  // Iterative, so a hostile report cannot nest suites deep enough to overflow the stack.
  std::vector<pugi::xml_node> suites = {root};
  while (!suites.empty()) {
    pugi::xml_node suite = suites.back();
    suites.pop_back();
    std::vector<pugi::xml_node> nested;
    for (pugi::xml_node child : suite.children()) {
      if (Is(child, "testsuite") || Is(child, "testsuites")) {
        nested.push_back(child);
        continue;
      }
      if (!Is(child, "testcase")) continue;
      TestOutcome outcome = ParseTestcase(child);
      auto [it, inserted] = index.emplace(outcome.id(), outcomes.size());
      if (inserted) {
        outcomes.push_back(std::move(outcome));
        continue;
      }
      TestOutcome& seen = outcomes[it->second];
      seen.set_time_s(seen.time_s() + outcome.time_s());
      if (Severity(outcome.status()) > Severity(seen.status())) {
        seen.set_status(outcome.status());
        seen.set_message(outcome.message());
      }
    }
    // Document order: the first nested suite is visited next.
    suites.insert(suites.end(), nested.rbegin(), nested.rend());
  }
  return outcomes;
}

}  // namespace crucible::golden
