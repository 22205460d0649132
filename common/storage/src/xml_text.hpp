// Reading the few fields imgpipe needs from S3's XML answers (ListBucketResult, Error). Not a general XML
// parser: S3's answers are flat, elements of one name do not nest, and text is entity-escaped.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imgpipe::xml {

// The raw content of every <name>...</name> (or <name attr="..">...</name>; <name/> is empty), in order.
std::vector<std::string_view> elements(std::string_view document, std::string_view name);

// The unescaped text of the first <name> element, if there is one.
std::optional<std::string> text(std::string_view document, std::string_view name);

// &amp; &lt; &gt; &quot; &apos; &#N; &#xN; replaced; anything else kept as it is.
std::string unescape(std::string_view text);

}  // namespace imgpipe::xml
