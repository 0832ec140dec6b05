// Fuzz target: the endpoints' request reader (client bodies, untrusted, up to 25 MiB). The first byte picks
// the endpoint (endpoint_specs()[b % size]) and the mode; in the structured mode the second sets its options.
//  - Raw: the rest is a Content-Type, a '\n', and a body. inspect and the answer counters must be total;
//    every view form_parts returns lies in the body, parts in order, each value ending where a delimiter begins
//    (RFC 2046 §5.1.1: the CRLF before "--boundary" belongs to the delimiter); what inspect accepts agrees
//    with the parts (model, upload bytes) or, for JSON, is an object nlohmann accepts.
//  - Structured: the rest is a boundary and a list of fields (name, filename?, value) that the target
//    writes itself as a client does (RFC 7578, names escaped as the WHATWG form encoding does, a boundary
//    found in no field). The Content-Type's boundary must come back, the parts must be exactly the fields,
//    and inspect's answer must follow from the fields.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "lagoon/chat/request.hpp"
#include "lagoon/relay/endpoints.hpp"
#include "lagoon/usage/record.hpp"

using namespace lagoon::relay;

namespace {

struct Field {
  std::string name;
  std::optional<std::string> filename;
  std::string value;
};

// Reads the input front to back; past its end every read is empty, so any input is some layout.
struct Reader {
  std::string_view rest;
  std::uint8_t byte() {
    if (rest.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(rest.front());
    rest.remove_prefix(1);
    return b;
  }
  std::string_view take(std::size_t n) {
    const auto s = rest.substr(0, n);
    rest.remove_prefix(s.size());
    return s;
  }
};

bool inside(std::string_view view, std::string_view body) {
  return view.data() >= body.data() && view.data() + view.size() <= body.data() + body.size();
}

// The parts' views are in the body, in order, and each value is followed by CRLF "--" boundary.
void check_parts(const std::vector<FormPart>& parts, std::string_view body, std::string_view boundary) {
  const std::string delimiter = "\r\n--" + std::string(boundary);
  const char* previous_end = body.data();
  for (const auto& p : parts) {
    // A part without a name keeps a default (null) view; a value always has its place in the body.
    if ((!p.name.empty() && !inside(p.name, body)) ||
        (p.filename && !p.filename->empty() && !inside(*p.filename, body)))
      std::abort();
    if (!inside(p.value, body) || p.value.data() < previous_end) std::abort();
    const auto end = static_cast<std::size_t>(p.value.data() - body.data()) + p.value.size();
    if (body.substr(end, delimiter.size()) != delimiter) std::abort();
    previous_end = p.value.data() + p.value.size();
  }
}

// What inspect must answer for a multipart body with these parts (`name`, `filename`, `value` of each):
// every `model` part must be a storable model and the last one is the model; the upload is every other
// part with a filename or named file/image; transcriptions need a file or image part, and so do the
// one-image endpoints, which count one image.
template <typename Parts>
void check_multipart_answer(const EndpointSpec& spec, const Parts& parts,
                            const std::variant<EndpointRequest, lagoon::chat::InvalidRequest>& got) {
  bool valid = spec.body != EndpointSpec::Body::json, file = false;
  std::optional<std::string> model;
  std::size_t upload = 0;
  for (const auto& p : parts) {
    const std::string_view name = p.name;
    if (name == "model") {
      if (lagoon::chat::model_problem(std::string_view(p.value))) valid = false;
      model = std::string(p.value);
    } else if (p.filename || name == "file" || name == "image") {
      file = file || name == "file" || name == "image";
      upload += std::string_view(p.value).size();
    }
  }
  if ((spec.meter == Meter::transcription || spec.meter == Meter::one_image) && !file) valid = false;
  const auto* req = std::get_if<EndpointRequest>(&got);
  if (valid != (req != nullptr)) std::abort();
  if (!req) return;
  if (!req->multipart || req->model != model || req->upload_bytes != upload) std::abort();
  if (spec.meter == Meter::one_image && req->units != 1.0) std::abort();
}

// An answer's counters read upstream bytes: total, and a usage row's units a finite count.
void count_answers(const EndpointSpec& spec, const EndpointRequest& req, std::string_view content_type,
                   std::string_view body) {
  for (const auto& c : {count_whole(spec, req, content_type, body), count_whole(spec, req, "application/json", body),
                        count_binary(spec, req)}) {
    if (c.units && (!std::isfinite(*c.units) || *c.units < 0)) std::abort();
    lagoon::usage::Record r;
    apply(c, r);
  }
  (void)responses_usage(body);
}

void raw(const EndpointSpec& spec, std::string_view input) {
  const auto nl = input.find('\n');
  const std::string_view content_type = input.substr(0, nl);
  const std::string_view body = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);

  const auto boundary = multipart_boundary(content_type);
  std::optional<std::vector<FormPart>> parts;
  if (boundary) {
    if (boundary->empty() || boundary->size() > 70) std::abort();
    parts = form_parts(body, *boundary);
    if (parts) check_parts(*parts, body, *boundary);
  }

  // An exception escaping inspect or a counter ends the run (std::terminate): each must be total.
  const auto got = inspect(spec, content_type, body);
  if (const auto* req = std::get_if<EndpointRequest>(&got)) {
    if (req->body_bytes != body.size()) std::abort();
    if (req->multipart) {
      if (!parts) std::abort();
      check_multipart_answer(spec, *parts, got);
    } else {
      const auto doc = nlohmann::json::parse(body, nullptr, false);
      if (doc.is_discarded() || !doc.is_object()) std::abort();
    }
    count_answers(spec, *req, content_type, body);
  } else {
    count_answers(spec, EndpointRequest{}, content_type, body);
  }
}

// RFC 2046 §5.1.1 bchars; a space may not end a boundary.
constexpr std::string_view kBchars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=? ";

// A name or filename as a browser writes it (WHATWG multipart/form-data: LF, CR and '"' percent-encoded).
std::string escaped(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '\n')
      out += "%0A";
    else if (c == '\r')
      out += "%0D";
    else if (c == '"')
      out += "%22";
    else
      out += c;
  }
  return out;
}

// The fields written as a client does, after an optional preamble; `options` as for structured().
std::string form_body(const std::vector<Field>& fields, const std::string& boundary, std::string_view preamble,
                      std::uint8_t options) {
  const bool padding = options & 4, filename_first = options & 8, type_header = options & 16, upper = options & 32;
  std::string body = preamble.empty() ? "" : std::string(preamble) + "\r\n";
  for (const auto& f : fields) {
    body += "--" + boundary + (padding ? " \t" : "") + "\r\n";
    if (type_header && f.filename) body += "Content-Type: application/octet-stream\r\n";
    body += upper ? "Content-Disposition: form-data" : "content-disposition: form-data";
    const std::string name = "; name=\"" + f.name + '"';
    const std::string filename = f.filename ? "; filename=\"" + *f.filename + '"' : "";
    body += filename_first ? filename + name : name + filename;
    body += "\r\n\r\n" + f.value + "\r\n";
  }
  return body + "--" + boundary + "--\r\n";
}

void structured(const EndpointSpec& spec, std::uint8_t options, Reader in) {
  const bool quote = options & 1, preamble = options & 2, upper = options & 32, charset = options & 64;

  std::string boundary;
  for (std::size_t n = 1 + in.byte() % 70; boundary.size() < n;) boundary += kBchars[in.byte() % kBchars.size()];
  if (boundary.back() == ' ') boundary.back() = '_';

  std::vector<Field> fields;
  while (!in.rest.empty() && fields.size() < 16) {
    const std::uint8_t shape = in.byte();
    Field f;
    f.name = escaped(in.take(shape % 16));
    if (shape & 0x80) f.filename = escaped(in.take(in.byte() % 32));
    const std::size_t value_size = in.byte() | (static_cast<std::size_t>(in.byte()) << 8);
    f.value = in.take(value_size);
    fields.push_back(std::move(f));
  }

  // A client picks a boundary found in no field (RFC 2046 §5.1.1); lengthen ours until it is.
  const std::string_view preamble_text = "This is the preamble.";
  auto occurs = [&] {
    if (preamble && preamble_text.find(boundary) != std::string_view::npos) return true;
    for (const auto& f : fields)
      if (f.name.find(boundary) != std::string::npos || f.value.find(boundary) != std::string::npos ||
          (f.filename && f.filename->find(boundary) != std::string::npos))
        return true;
    return false;
  };
  while (occurs()) {
    if (boundary.size() == 70) return;
    boundary += kBchars[boundary.size() % 62];
  }

  const bool needs_quotes = boundary.find_first_of("()<>@,;:\\\"/[]?= ") != std::string::npos;
  std::string content_type = upper ? "Multipart/Form-Data" : "multipart/form-data";
  if (charset) content_type += "; charset=utf-8";
  content_type += upper ? "; Boundary=" : "; boundary=";
  content_type += quote || needs_quotes ? '"' + boundary + '"' : boundary;
  if (multipart_boundary(content_type) != boundary) std::abort();

  const std::string body = form_body(fields, boundary, preamble ? preamble_text : "", options);

  const auto parts = form_parts(body, boundary);
  if (!parts || parts->size() != fields.size()) std::abort();
  check_parts(*parts, body, boundary);
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto& p = (*parts)[i];
    const auto& f = fields[i];
    if (p.name != f.name || p.value != f.value || p.filename.has_value() != f.filename.has_value() ||
        (f.filename && *p.filename != *f.filename))
      std::abort();
  }

  const auto got = inspect(spec, content_type, body);
  check_multipart_answer(spec, fields, got);
  if (const auto* req = std::get_if<EndpointRequest>(&got)) {
    if (req->body_bytes != body.size()) std::abort();
    count_answers(spec, *req, "application/json", body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& specs = endpoint_specs();
  const EndpointSpec& spec = specs[data[0] % specs.size()];
  Reader in{std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)};
  if ((data[0] / specs.size()) % 2 == 0) {
    raw(spec, in.rest);
  } else {
    const std::uint8_t options = in.byte();
    structured(spec, options, in);
  }
  return 0;
}
