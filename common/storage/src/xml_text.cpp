#include "xml_text.hpp"

#include <cstdint>

namespace imgpipe::xml {
namespace {

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

// The character reference "#N" or "#xN" as a code point, if it is one.
std::optional<std::uint32_t> character_reference(std::string_view entity) {
  if (entity.size() < 2 || entity.front() != '#') return std::nullopt;
  const bool hex = entity[1] == 'x' || entity[1] == 'X';
  const std::string_view digits = entity.substr(hex ? 2 : 1);
  if (digits.empty() || digits.size() > 8) return std::nullopt;
  std::uint32_t code = 0;
  for (const char c : digits) {
    std::uint32_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<std::uint32_t>(c - '0');
    } else if (hex && c >= 'a' && c <= 'f') {
      digit = static_cast<std::uint32_t>(c - 'a' + 10);
    } else if (hex && c >= 'A' && c <= 'F') {
      digit = static_cast<std::uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    code = code * (hex ? 16u : 10u) + digit;
  }
  if (code > 0x10FFFF) return std::nullopt;
  return code;
}

}  // namespace

std::vector<std::string_view> elements(std::string_view document, std::string_view name) {
  std::vector<std::string_view> found;
  const std::string open = "<" + std::string(name);
  const std::string close = "</" + std::string(name) + ">";
  std::size_t at = 0;
  while ((at = document.find(open, at)) != std::string_view::npos) {
    const std::size_t after_name = at + open.size();
    if (after_name >= document.size()) break;
    const char next = document[after_name];
    if (next != '>' && next != ' ' && next != '/' && next != '\t' && next != '\n' && next != '\r') {
      at = after_name;  // <NameSuffix...>: another element
      continue;
    }
    const std::size_t tag_end = document.find('>', after_name);
    if (tag_end == std::string_view::npos) break;
    if (document[tag_end - 1] == '/') {
      found.emplace_back();
      at = tag_end + 1;
      continue;
    }
    const std::size_t end = document.find(close, tag_end + 1);
    if (end == std::string_view::npos) break;
    found.push_back(document.substr(tag_end + 1, end - tag_end - 1));
    at = end + close.size();
  }
  return found;
}

std::optional<std::string> text(std::string_view document, std::string_view name) {
  const auto found = elements(document, name);
  if (found.empty()) return std::nullopt;
  return unescape(found.front());
}

std::string unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::size_t semicolon = text[i] == '&' ? text.find(';', i) : std::string_view::npos;
    if (semicolon == std::string_view::npos || semicolon - i > 10) {
      out += text[i];
      continue;
    }
    const std::string_view entity = text.substr(i + 1, semicolon - i - 1);
    if (entity == "amp") {
      out += '&';
    } else if (entity == "lt") {
      out += '<';
    } else if (entity == "gt") {
      out += '>';
    } else if (entity == "quot") {
      out += '"';
    } else if (entity == "apos") {
      out += '\'';
    } else if (const auto code = character_reference(entity)) {
      append_utf8(out, *code);
    } else {
      out += text[i];
      continue;
    }
    i = semicolon;
  }
  return out;
}

}  // namespace imgpipe::xml
