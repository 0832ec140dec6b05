// lagoon-mock-upstream's route table and Venice's endpoints other than chat: each checks its request as
// Venice would (400 before any directive applies), then answer() applies the delay, stall and status
// directives and sends a body built by the pure functions of include/lagoon/mock/.
#include "lagoon/mock/catalog_control.hpp"
#include "server.hpp"

namespace lagoon::mock::server {
namespace {

// An optional integer field in [lo, hi]: false when present but not such an integer.
bool int_field(const json& body, const char* name, unsigned lo, unsigned hi, unsigned& out) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_number_integer() || it->get<std::int64_t>() < lo || it->get<std::int64_t>() > hi) return false;
  out = it->get<unsigned>();
  return true;
}

std::string string_or(const json& body, const char* name, std::string fallback) {
  auto it = body.find(name);
  return it != body.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// Venice takes an image as base64 (plain or a data: URL) or as an http(s) URL. The answer is keyed by the
// image's bytes, or by the URL as sent. nullopt when it is none of these.
std::optional<std::string> image_from_text(std::string_view s) {
  if (s.starts_with("http://") || s.starts_with("https://")) return std::string(s);
  if (s.starts_with("data:")) {
    const auto comma = s.find(',');
    if (comma == std::string_view::npos) return std::nullopt;
    s.remove_prefix(comma + 1);
  }
  auto bytes = base64_decode(s);
  if (!bytes || bytes->empty()) return std::nullopt;
  return bytes;
}

// The image of an upscale, edit or background removal: a file part named "image", or a text "image"
// (base64 or URL), or "image_url" (background removal), from the form or the JSON body.
std::optional<std::string> image_input(const Call& call) {
  if (call.form) {
    if (const Part* p = find_part(*call.form, "image")) {
      if (!p->filename.empty() || !p->content_type.empty()) return std::string(p->data);
      return image_from_text(p->data);
    }
  } else if (auto text = call.field("image")) {
    return image_from_text(*text);
  }
  return call.field("image_url");
}

}  // namespace

const Mock::Route* Mock::find_route(std::string_view path, bhttp::verb method) {
  using bhttp::verb;
  static const Route kRoutes[] = {
      {"/chat/completions", verb::post, Access::key, Counter::chat, &Mock::chat},
      {"/embeddings", verb::post, Access::key, Counter::none, &Mock::embeddings},
      {"/images/generations", verb::post, Access::key, Counter::none, &Mock::images_generations},
      {"/image/generate", verb::post, Access::key, Counter::none, &Mock::image_generate},
      {"/image/upscale", verb::post, Access::key, Counter::none, &Mock::image_transform},
      {"/image/edit", verb::post, Access::key, Counter::none, &Mock::image_transform},
      {"/image/background-remove", verb::post, Access::key, Counter::none, &Mock::image_transform},
      {"/audio/speech", verb::post, Access::key, Counter::none, &Mock::speech},
      {"/audio/transcriptions", verb::post, Access::key, Counter::none, &Mock::transcriptions},
      {"/responses", verb::post, Access::key, Counter::none, &Mock::responses},
      {"/models", verb::get, Access::optional_key, Counter::catalog, &Mock::catalog},
      {"/models/traits", verb::get, Access::optional_key, Counter::catalog, &Mock::catalog},
      {"/models/compatibility_mapping", verb::get, Access::optional_key, Counter::catalog, &Mock::catalog},
      {"/image/styles", verb::get, Access::optional_key, Counter::catalog, &Mock::catalog},
  };
  for (const auto& r : kRoutes)
    if (r.path == path && r.method == method) return &r;
  return nullptr;
}

awaitable<bool> Mock::embeddings(beast::tcp_stream& stream, Call& call) {
  const json& b = call.body;
  if (!b.is_object() || !b.contains("model") || !b["model"].is_string())
    co_return co_await refuse(stream, call, 400, "model is required");
  std::vector<std::string> inputs;
  if (auto it = b.find("input"); it != b.end() && it->is_string() && !it->get<std::string>().empty()) {
    inputs.push_back(it->get<std::string>());
  } else if (it != b.end() && it->is_array() && !it->empty() && it->size() <= 2048) {
    for (const auto& item : *it) {
      // Venice refuses token arrays (integer ids) with 400, unlike OpenAI.
      if (!item.is_string() || item.get<std::string>().empty()) {
        inputs.clear();
        break;
      }
      inputs.push_back(item.get<std::string>());
    }
  }
  if (inputs.empty()) co_return co_await refuse(stream, call, 400, "input must be a string or an array of strings");
  const std::string format = string_or(b, "encoding_format", "float");
  if (format != "float" && format != "base64")
    co_return co_await refuse(stream, call, 400, "encoding_format must be float or base64");
  unsigned dimensions = kDefaultEmbeddingDimensions;
  if (!int_field(b, "dimensions", 1, 8192, dimensions))
    co_return co_await refuse(stream, call, 400, "dimensions must be an integer from 1 to 8192");
  const std::string model = b["model"];

  const std::string body = embeddings_body(inputs, model, dimensions, format == "base64");
  co_return co_await answer(stream, call, "application/json", model, body);
}

awaitable<bool> Mock::images_generations(beast::tcp_stream& stream, Call& call) {
  const json& b = call.body;
  if (!b.is_object() || !b.contains("prompt") || !b["prompt"].is_string())
    co_return co_await refuse(stream, call, 400, "prompt is required");
  unsigned n = 1;
  if (!int_field(b, "n", 1, 10, n)) co_return co_await refuse(stream, call, 400, "n must be an integer from 1 to 10");
  const std::string response_format = string_or(b, "response_format", "b64_json");
  if (response_format != "b64_json" && response_format != "url")
    co_return co_await refuse(stream, call, 400, "response_format must be b64_json or url");
  const std::string_view type = image_content_type(string_or(b, "output_format", "png"));
  if (type.empty()) co_return co_await refuse(stream, call, 400, "output_format must be jpeg, png or webp");
  const std::string prompt = b["prompt"];
  const std::string model = string_or(b, "model", "default");

  const std::string body = images_generations_body(prompt, n, binary_size(call.plan), response_format == "url", type);
  co_return co_await answer(stream, call, "application/json", model, body);
}

awaitable<bool> Mock::image_generate(beast::tcp_stream& stream, Call& call) {
  const json& b = call.body;
  if (!b.is_object() || !b.contains("model") || !b["model"].is_string())
    co_return co_await refuse(stream, call, 400, "model is required");
  if (!b.contains("prompt") || !b["prompt"].is_string())
    co_return co_await refuse(stream, call, 400, "prompt is required");
  unsigned variants = 1;
  if (!int_field(b, "variants", 1, 4, variants))
    co_return co_await refuse(stream, call, 400, "variants must be an integer from 1 to 4");
  // Venice's default format is webp (GenerateImageRequest.format).
  const std::string_view type = image_content_type(string_or(b, "format", "webp"));
  if (type.empty()) co_return co_await refuse(stream, call, 400, "format must be jpeg, png or webp");
  const bool binary = b.value("return_binary", false) == true;
  const std::string prompt = b["prompt"];
  const std::string model = b["model"];
  const std::string id = "generate-image-mock-" + std::to_string(++ids_);

  const std::string body = binary ? mock_bytes(binary_size(call.plan), image_key(prompt, 0))
                                  : image_generate_body(id, prompt, variants, binary_size(call.plan), b);
  co_return co_await answer(stream, call, binary ? type : "application/json", model, body);
}

awaitable<bool> Mock::image_transform(beast::tcp_stream& stream, Call& call) {
  const std::string op = call.path.substr(call.path.rfind('/') + 1);  // upscale, edit, background-remove
  if (!call.form && !call.body.is_object())
    co_return co_await refuse(stream, call, 400, "expected a JSON object or multipart/form-data");
  const auto image = image_input(call);
  if (!image) co_return co_await refuse(stream, call, 400, "image is required (a file, base64 or a URL)");
  std::string_view type = "image/png";
  if (op == "edit") {
    if (!call.field("prompt")) co_return co_await refuse(stream, call, 400, "prompt is required");
    if (auto format = call.field("output_format")) type = image_content_type(*format);
    if (type.empty()) co_return co_await refuse(stream, call, 400, "output_format must be jpeg, png or webp");
  }
  const std::string model = call.field("model").value_or(op == "edit" ? "firered-image-edit" : op);

  const std::string body = mock_bytes(binary_size(call.plan), edit_key(op, *image));
  co_return co_await answer(stream, call, type, model, body);
}

awaitable<bool> Mock::speech(beast::tcp_stream& stream, Call& call) {
  const json& b = call.body;
  if (!b.is_object() || !b.contains("input") || !b["input"].is_string() || b["input"].get<std::string>().empty())
    co_return co_await refuse(stream, call, 400, "input is required");
  const std::string format = string_or(b, "response_format", "mp3");
  const std::string_view type = audio_content_type(format);
  if (type.empty())
    co_return co_await refuse(stream, call, 400, "response_format must be mp3, opus, aac, flac, wav or pcm");
  const std::string input = b["input"];
  const std::string model = string_or(b, "model", "tts-kokoro");

  // Always HTTP chunks, `streaming` or not: a test sees the first piece arrive before the last is sent.
  const std::string body = mock_bytes(binary_size(call.plan), input);
  co_return co_await answer(stream, call, type, model, body, true);
}

awaitable<bool> Mock::transcriptions(beast::tcp_stream& stream, Call& call) {
  if (!call.form) co_return co_await refuse(stream, call, 415, "expected multipart/form-data");
  const Part* file = find_part(*call.form, "file");
  if (!file || file->data.empty()) co_return co_await refuse(stream, call, 400, "file is required");
  const std::string format = call.field("response_format").value_or("json");
  if (format != "json" && format != "text")
    co_return co_await refuse(stream, call, 400, "response_format must be json or text");
  const std::string stamps = call.field("timestamps").value_or("false");
  const std::string model = call.field("model").value_or("nvidia/parakeet-tdt-0.6b-v3");

  const std::string text = transcript_text(call.plan);
  const std::optional<double> duration = call.plan.no_duration ? std::nullopt : wav_seconds(file->data);
  const std::string body =
      format == "text" ? text : transcription_body(text, duration, stamps == "true" || stamps == "1");
  co_return co_await answer(stream, call, format == "text" ? "text/plain; charset=utf-8" : "application/json", model,
                            body);
}

awaitable<bool> Mock::responses(beast::tcp_stream& stream, Call& call) {
  const json& b = call.body;
  if (!b.is_object() || !b.contains("model") || !b["model"].is_string())
    co_return co_await refuse(stream, call, 400, "model is required");
  const std::string model = b["model"];
  const std::string id = "resp_mock_" + std::to_string(++ids_);
  const ResponseUsage usage{prompt_tokens_for(call.req.body().size()), call.plan.chunks};
  const std::string text = content_text(call.plan);
  if (b.value("stream", false) != true)
    co_return co_await answer(stream, call, "application/json", model, response_body(id, model, text, usage));

  const std::optional<bool> answered = co_await preamble(stream, call);
  if (answered) co_return *answered;
  stats_.streams_started++;
  const std::vector<std::string> opening = {response_opening_events(id, model)};
  const std::function<std::string(unsigned)> delta = [&](unsigned i) {
    return response_delta_event(id, kResponseOpeningEvents + i, chunk_content(call.plan, i));
  };
  const std::vector<std::string> closing = {
      response_closing_events(id, model, text, usage, kResponseOpeningEvents + call.plan.chunks)};
  co_return co_await send_sse(stream, call.plan, model, call.keep_alive, opening, delta, closing);
}

awaitable<bool> Mock::catalog(beast::tcp_stream& stream, Call& call) {
  CatalogAnswer answer = catalog_answer(*catalog_now(), call.path, call.query_param("type"));
  if (answer.status == 400) {
    Response res = failure(answer.status, std::move(answer.body), call.keep_alive);
    co_return co_await respond(stream, res, call.keep_alive);
  }

  const std::optional<bool> answered = co_await preamble(stream, call);
  if (answered) co_return *answered;
  if (answer.status != 200) {  // POST /mock/catalog made /models fail
    Response res = failure(answer.status, std::move(answer.body), call.keep_alive);
    co_return co_await respond(stream, res, call.keep_alive);
  }
  Head head{bhttp::status::ok, 11};
  head.set(bhttp::field::content_type, "application/json");
  co_return co_await send_pieces(stream, call, head, answer.body, false);
}

}  // namespace lagoon::mock::server
