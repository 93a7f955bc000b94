// Internal header of storage/: just enough XML for S3's replies (ListBucketResult, Error).
// S3 replies are flat, machine-written documents: elements without mixed content, no CDATA, no
// comments inside the parts we read. These helpers find elements by name at any depth; they do not
// validate the document. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fs::storage {

// The raw inner text of every <name>...</name> (or empty for <name/>), in document order; an
// element `name` nested in another `name` is not supported (S3 never does that).
std::vector<std::string_view> XmlElements(std::string_view doc, std::string_view name);
// The decoded text of the first <name> element, or "" when there is none.
std::string XmlText(std::string_view doc, std::string_view name);
// Decodes the five named entities and numeric references (&#38; &#x26;); invalid ones stay as is.
std::string XmlUnescape(std::string_view s);

}  // namespace fs::storage
