#include "vcs/patch_text.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <vector>

namespace crucible::vcs::internal {

namespace {

std::vector<std::string_view> SplitKeepingNewlines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    size_t len = end == std::string_view::npos ? text.size() : end + 1;
    lines.push_back(text.substr(0, len));
    text.remove_prefix(len);
  }
  return lines;
}

std::string_view StripNewline(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  return line;
}

// The lines of a file, without their newlines.
std::vector<std::string> FileLines(std::string_view content) {
  std::vector<std::string> lines;
  for (std::string_view line : SplitKeepingNewlines(content)) {
    lines.emplace_back(StripNewline(line));
  }
  return lines;
}

struct HunkHeader {
  long old_start = 0, old_count = 1, new_start = 0, new_count = 1;
  bool old_has_count = false, new_has_count = false;
  std::string_view tail;  // after the closing "@@", newline included
};

bool ParseNumber(std::string_view& s, long& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  constexpr long kMaxLine = 1L << 40;  // keeps offset arithmetic far from overflow
  if (ec != std::errc() || out < 0 || out > kMaxLine) return false;
  s.remove_prefix(static_cast<size_t>(ptr - s.data()));
  return true;
}

bool ParseRange(std::string_view& s, char sign, long& start, long& count, bool& has_count) {
  if (s.empty() || s[0] != sign) return false;
  s.remove_prefix(1);
  if (!ParseNumber(s, start)) return false;
  if (!s.empty() && s[0] == ',') {
    s.remove_prefix(1);
    has_count = true;
    return ParseNumber(s, count);
  }
  return true;
}

// "@@ -A[,B] +C[,D] @@..."
std::optional<HunkHeader> ParseHunkHeader(std::string_view line) {
  HunkHeader h;
  std::string_view s = line.substr(3);
  if (!ParseRange(s, '-', h.old_start, h.old_count, h.old_has_count)) return std::nullopt;
  if (s.empty() || s[0] != ' ') return std::nullopt;
  s.remove_prefix(1);
  if (!ParseRange(s, '+', h.new_start, h.new_count, h.new_has_count)) return std::nullopt;
  if (!s.starts_with(" @@")) return std::nullopt;
  h.tail = s.substr(3);
  return h;
}

std::string FormatHunkHeader(const HunkHeader& h) {
  std::string out = "@@ -" + std::to_string(h.old_start);
  if (h.old_has_count) out += "," + std::to_string(h.old_count);
  out += " +" + std::to_string(h.new_start);
  if (h.new_has_count) out += "," + std::to_string(h.new_count);
  out += " @@";
  out += h.tail;
  return out;
}

// The path of a "--- a/PATH" line; empty for /dev/null and quoted names.
std::string OldPath(std::string_view rest) {
  rest = StripNewline(rest);
  if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
  if (size_t tab = rest.find('\t'); tab != std::string_view::npos) rest = rest.substr(0, tab);
  if (rest == "/dev/null" || rest.empty() || rest[0] == '"') return "";
  if (rest.starts_with("a/")) rest.remove_prefix(2);
  return std::string(rest);
}

std::optional<long> FindHunk(const std::vector<std::string>& image,
                             const std::vector<std::string_view>& pre, long nominal) {
  const long n = static_cast<long>(image.size());
  const long m = static_cast<long>(pre.size());
  if (m > n) return std::nullopt;
  const long last = n - m;
  nominal = std::clamp(nominal, 0L, last);
  auto matches = [&](long at) {
    for (long k = 0; k < m; ++k) {
      if (image[static_cast<size_t>(at + k)] != pre[static_cast<size_t>(k)]) return false;
    }
    return true;
  };
  for (long d = 0; nominal - d >= 0 || nominal + d <= last; ++d) {
    if (nominal - d >= 0 && matches(nominal - d)) return nominal - d;
    if (d > 0 && nominal + d <= last && matches(nominal + d)) return nominal + d;
  }
  return std::nullopt;
}

struct FileState {
  bool usable = false;
  std::vector<std::string> image;  // the file with the hunks so far applied
  long shift = 0;                  // offset of the previous hunk
};

}  // namespace

std::string RelocateHunks(std::string_view patch, const FileReader& read) {
  const std::vector<std::string_view> lines = SplitKeepingNewlines(patch);
  std::string out;
  out.reserve(patch.size());
  FileState file;
  std::set<std::string> seen;
  size_t i = 0;
  while (i < lines.size()) {
    std::string_view line = lines[i];
    if (line.starts_with("diff --git ")) {
      file = {};
    } else if (line.starts_with("--- ")) {
      file = {};
      std::string path = OldPath(line.substr(4));
      // A file patched twice in one patch is left alone.
      if (!path.empty() && seen.insert(path).second) {
        if (auto content = read(path)) {
          file.usable = true;
          file.image = FileLines(*content);
        }
      }
    } else if (line.starts_with("@@ ")) {
      auto header = ParseHunkHeader(line);
      if (!header) {
        file.usable = false;
        out += line;
        ++i;
        continue;
      }
      // The hunk's body: exactly old_count preimage and new_count postimage lines.
      size_t j = i + 1;
      long old_left = header->old_count, new_left = header->new_count;
      std::vector<std::string_view> pre, post;
      while (j < lines.size() && (old_left > 0 || new_left > 0)) {
        std::string_view l = lines[j];
        std::string_view body = StripNewline(l.substr(std::min<size_t>(1, l.size())));
        if (l[0] == ' ' || l == "\n") {
          pre.push_back(body);
          post.push_back(body);
          --old_left;
          --new_left;
        } else if (l[0] == '-') {
          pre.push_back(body);
          --old_left;
        } else if (l[0] == '+') {
          post.push_back(body);
          --new_left;
        } else if (l[0] != '\\') {
          break;
        }
        ++j;
      }
      while (j < lines.size() && lines[j].starts_with("\\")) ++j;

      std::string header_text(line);
      if (file.usable) {
        const long stated = header->new_start > 0 ? header->new_start - 1 : 0;
        auto found = FindHunk(file.image, pre, stated + file.shift);
        if (!found) {
          file.usable = false;
        } else {
          file.shift = *found - stated;
          if (file.shift != 0) {
            header->new_start = *found + 1;
            header->old_start = std::max(0L, header->old_start + file.shift);
            header_text = FormatHunkHeader(*header);
          }
          auto at = file.image.begin() + *found;
          at = file.image.erase(at, at + static_cast<long>(pre.size()));
          file.image.insert(at, post.begin(), post.end());
        }
      }
      out += header_text;
      for (size_t k = i + 1; k < j; ++k) out += lines[k];
      i = j;
      continue;
    }
    out += line;
    ++i;
  }
  return out;
}

Status CheckPathInside(const std::string& root, std::string_view rel, bool may_be_link) {
  auto fail = [&](std::string_view why) {
    return Fail(Code::kInvalidArgument,
                "unsafe path '" + std::string(rel) + "' in patch: " + std::string(why));
  };
  if (rel.empty() || rel[0] == '/') return fail("not a relative path");
  std::vector<std::string_view> parts;
  for (std::string_view rest = rel; !rest.empty();) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (part.empty() || part == "." || part == "..") return fail("bad component");
    parts.push_back(part);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  std::string path = root;
  for (size_t k = 0; k < parts.size(); ++k) {
    path += '/';
    path += parts[k];
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return {};  // the rest does not exist yet
    const bool last = k + 1 == parts.size();
    if (S_ISLNK(st.st_mode) && !(last && may_be_link)) {
      return fail(last ? "the file is a symbolic link" : "goes through a symbolic link");
    }
  }
  return {};
}

}  // namespace crucible::vcs::internal
