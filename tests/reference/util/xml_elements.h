#pragma once
// A strict little XML reader for tests of documents kvfid writes itself (SVG): checks
// that tags nest and close, attributes are quoted, and '&' only starts the five
// predefined entities; returns the elements in document order with their attributes
// and text (entities decoded). Not a general XML parser: no DTDs, CDATA or comments.
#include <cctype>
#include <map>
#include <string>
#include <vector>

namespace kvfid::test {

struct XmlElement {
  std::string name;
  std::map<std::string, std::string> attributes;
  std::string text;  // character data directly inside it
  int depth = 0;     // 0 for the root
};

struct XmlDocument {
  std::vector<XmlElement> elements;
  std::string error;  // empty when well-formed

  std::vector<const XmlElement*> named(const std::string& name) const {
    std::vector<const XmlElement*> out;
    for (const XmlElement& e : elements)
      if (e.name == name) out.push_back(&e);
    return out;
  }
  std::vector<const XmlElement*> with_class(const std::string& cls) const {
    std::vector<const XmlElement*> out;
    for (const XmlElement& e : elements)
      if (auto it = e.attributes.find("class"); it != e.attributes.end() && it->second == cls) out.push_back(&e);
    return out;
  }
};

inline XmlDocument parse_xml(const std::string& doc) {
  XmlDocument out;
  std::vector<std::size_t> open;  // indices into out.elements
  std::size_t i = 0;
  bool root_closed = false;
  auto fail = [&](const std::string& why) {
    out.error = why + " at byte " + std::to_string(i);
    return out;
  };
  auto name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' || c == '-' || c == '.'; };
  auto decode = [&](const std::string& raw, std::string& decoded) {
    static const std::map<std::string, char> entities = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    for (std::size_t k = 0; k < raw.size(); ++k) {
      if (raw[k] == '<') return false;
      if (raw[k] != '&') {
        decoded += raw[k];
        continue;
      }
      const std::size_t semi = raw.find(';', k);
      if (semi == std::string::npos) return false;
      auto it = entities.find(raw.substr(k + 1, semi - k - 1));
      if (it == entities.end()) return false;
      decoded += it->second;
      k = semi;
    }
    return true;
  };
  auto skip_space = [&] { while (i < doc.size() && std::isspace(static_cast<unsigned char>(doc[i]))) ++i; };

  skip_space();
  if (doc.compare(i, 5, "<?xml") == 0) {
    const std::size_t end = doc.find("?>", i);
    if (end == std::string::npos) return fail("unterminated prolog");
    i = end + 2;
  }
  while (i < doc.size()) {
    if (doc[i] != '<') {
      const std::size_t next = doc.find('<', i);
      const std::string raw = doc.substr(i, next == std::string::npos ? std::string::npos : next - i);
      std::string text;
      if (!decode(raw, text)) return fail("bad character data");
      if (open.empty()) {
        for (char c : raw)
          if (!std::isspace(static_cast<unsigned char>(c))) return fail("text outside the root");
      } else {
        out.elements[open.back()].text += text;
      }
      i = next == std::string::npos ? doc.size() : next;
      continue;
    }
    if (doc.compare(i, 2, "</") == 0) {
      i += 2;
      const std::size_t start = i;
      while (i < doc.size() && name_char(doc[i])) ++i;
      const std::string name = doc.substr(start, i - start);
      skip_space();
      if (i >= doc.size() || doc[i] != '>') return fail("bad closing tag");
      ++i;
      if (open.empty() || out.elements[open.back()].name != name) return fail("closing tag </" + name + "> does not match");
      open.pop_back();
      if (open.empty()) root_closed = true;
      continue;
    }
    ++i;
    if (root_closed) return fail("a second root element");
    const std::size_t start = i;
    while (i < doc.size() && name_char(doc[i])) ++i;
    XmlElement e;
    e.name = doc.substr(start, i - start);
    e.depth = int(open.size());
    if (e.name.empty()) return fail("empty tag name");
    while (true) {
      skip_space();
      if (i >= doc.size()) return fail("unterminated tag");
      if (doc[i] == '>' || doc.compare(i, 2, "/>") == 0) break;
      const std::size_t a = i;
      while (i < doc.size() && name_char(doc[i])) ++i;
      const std::string attr = doc.substr(a, i - a);
      if (attr.empty() || i + 1 >= doc.size() || doc[i] != '=' || doc[i + 1] != '"') return fail("unquoted attribute");
      i += 2;
      const std::size_t close = doc.find('"', i);
      if (close == std::string::npos) return fail("unterminated attribute");
      std::string value;
      if (!decode(doc.substr(i, close - i), value)) return fail("bad attribute value");
      if (!e.attributes.emplace(attr, value).second) return fail("repeated attribute " + attr);
      i = close + 1;
    }
    const bool self_closing = doc[i] == '/';
    i += self_closing ? 2 : 1;
    out.elements.push_back(e);
    if (self_closing) {
      if (open.empty()) root_closed = true;
    } else {
      open.push_back(out.elements.size() - 1);
    }
  }
  if (!open.empty()) return fail("unclosed <" + out.elements[open.back()].name + ">");
  if (!root_closed) return fail("no root element");
  return out;
}

}  // namespace kvfid::test
