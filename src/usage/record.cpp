#include "lagoon/usage/record.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace lagoon::usage {

namespace {

// Slot layout: magic, then fixed-width numbers, then length-prefixed strings.
constexpr std::uint32_t kMagic = 0x4C55'5231;  // "LUR1"

enum Flags : std::uint16_t {
  kStream = 1 << 0,
  kEstimated = 1 << 1,
  kHasSession = 1 << 2,
  kHasModel = 1 << 3,
  kHasPrompt = 1 << 4,
  kHasCompletion = 1 << 5,
  kHasTotal = 1 << 6,
  kHasTtfb = 1 << 7,
  // units and unit follow the four strings. Older binaries never set this bit, so their slots (which end
  // after the outcome) still read as they were written: crash recovery after an upgrade reads them.
  kHasUnits = 1 << 8,
  // The cost block follows (after the units block when there is one); the same reasoning as kHasUnits.
  kHasCost = 1 << 9,
};

struct Fixed {
  std::uint32_t magic;
  std::uint16_t flags;
  std::uint16_t endpoint;  // Endpoint; 0 (chat) in records written before it existed
  std::int64_t api_key_id;
  std::int64_t user_id;
  std::int64_t started_at_us;
  double duration_ms;
  double ttfb_ms;
  std::int32_t status_code;
  std::int32_t prompt_tokens;
  std::int32_t completion_tokens;
  std::int32_t total_tokens;
};
constexpr std::size_t kStringsBytes = 4 + kMaxRequestId + kMaxSessionId + kMaxModel + kMaxOutcome;  // with lengths
constexpr std::size_t kUnitsBytes = sizeof(double) + sizeof(std::uint8_t);
constexpr std::size_t kCostBytes = sizeof(std::uint8_t) + 3 * sizeof(std::int64_t);
constexpr std::int64_t kNone = INT64_MIN;  // an absent amount in the cost block
static_assert(sizeof(Fixed) == 64, "the layout old slots were written in");
static_assert(sizeof(Fixed) + kStringsBytes + kUnitsBytes + kCostBytes <= kSlotPayload);

class Writer {
 public:
  explicit Writer(std::byte* p) : p_(p) {}
  void raw(const void* src, std::size_t n) {
    if (n == 0) return;  // an empty view's data() may be null, which memcpy must never see (UBSan)
    std::memcpy(p_, src, n);
    p_ += n;
  }
  void str(std::string_view s, std::size_t max) {
    std::size_t cut = std::min(s.size(), max);
    // Never cut a UTF-8 sequence in half: Postgres would refuse the whole record.
    if (cut < s.size())
      while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    const auto n = static_cast<std::uint8_t>(cut);
    raw(&n, 1);
    raw(s.data(), n);
  }

 private:
  std::byte* p_;
};

class Reader {
 public:
  Reader(const std::byte* p, const std::byte* end) : p_(p), end_(end) {}
  bool raw(void* dst, std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) return false;
    std::memcpy(dst, p_, n);
    p_ += n;
    return true;
  }
  bool str(std::string& s, std::size_t max) {
    std::uint8_t n = 0;
    if (!raw(&n, 1) || n > max || static_cast<std::size_t>(end_ - p_) < n) return false;
    s.assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

 private:
  const std::byte* p_;
  const std::byte* end_;
};

// Rows without any of it (the gateway's own routes, and every row before costs existed) keep the old layout.
bool has_cost(const Record& r) noexcept {
  return r.cost_source != CostSource::none || r.cost || r.upstream_cost || r.price_version;
}

bool decode_cost(Reader& rd, Record& r) {
  std::uint8_t source = 0;
  std::int64_t amounts[3] = {};
  if (!rd.raw(&source, sizeof source) || !rd.raw(amounts, sizeof amounts)) return false;
  const auto known = cost_source_from(cost_source_name(static_cast<CostSource>(source)));
  if (source != 0 && (!known || static_cast<std::uint8_t>(*known) != source)) return false;
  if (known) r.cost_source = *known;
  if (amounts[0] != kNone) r.cost = amounts[0];
  if (amounts[1] != kNone) r.upstream_cost = amounts[1];
  if (amounts[2] != kNone) r.price_version = amounts[2];
  return true;
}

}  // namespace

void encode(const Record& r, std::span<std::byte, kSlotPayload> out) noexcept {
  Fixed f{};
  f.magic = kMagic;
  f.flags = static_cast<std::uint16_t>((r.stream ? kStream : 0) | (r.tokens_estimated ? kEstimated : 0) |
                                       (r.session_id ? kHasSession : 0) | (r.model ? kHasModel : 0) |
                                       (r.prompt_tokens ? kHasPrompt : 0) | (r.completion_tokens ? kHasCompletion : 0) |
                                       (r.total_tokens ? kHasTotal : 0) | (r.ttfb_ms ? kHasTtfb : 0) |
                                       (r.unit != Unit::none ? kHasUnits : 0) |
                                       (has_cost(r) ? kHasCost : 0));
  f.endpoint = static_cast<std::uint16_t>(r.endpoint);
  f.api_key_id = r.api_key_id;
  f.user_id = r.user_id;
  f.started_at_us = r.started_at_us;
  f.duration_ms = r.duration_ms;
  f.ttfb_ms = r.ttfb_ms.value_or(0);
  f.status_code = r.status_code;
  f.prompt_tokens = r.prompt_tokens.value_or(0);
  f.completion_tokens = r.completion_tokens.value_or(0);
  f.total_tokens = r.total_tokens.value_or(0);
  Writer w(out.data());
  w.raw(&f, sizeof f);
  w.str(r.request_id, kMaxRequestId);
  // Views, not value_or(""): that would copy each string (a heap allocation per request on the reactor).
  w.str(r.session_id ? std::string_view(*r.session_id) : std::string_view(), kMaxSessionId);
  w.str(r.model ? std::string_view(*r.model) : std::string_view(), kMaxModel);
  w.str(r.outcome, kMaxOutcome);
  if (r.unit != Unit::none) {
    // The unit decides, as in the journal line. A unit without a count breaks Record's promise (a
    // producer's bug); NaN keeps it so, and Postgres's CHECK sends the row to the dead-letter file rather
    // than the ring billing 0.
    const double units = r.units.value_or(std::numeric_limits<double>::quiet_NaN());
    const auto unit = static_cast<std::uint8_t>(r.unit);
    w.raw(&units, sizeof units);
    w.raw(&unit, sizeof unit);
  }
  if (has_cost(r)) {
    const auto source = static_cast<std::uint8_t>(r.cost_source);
    const std::int64_t amounts[3] = {r.cost.value_or(kNone), r.upstream_cost.value_or(kNone),
                                     r.price_version.value_or(kNone)};
    w.raw(&source, sizeof source);
    w.raw(amounts, sizeof amounts);
  }
}

std::optional<Record> decode(std::span<const std::byte, kSlotPayload> in) {
  Reader rd(in.data(), in.data() + in.size());
  Fixed f{};
  if (!rd.raw(&f, sizeof f) || f.magic != kMagic) return std::nullopt;
  Record r;
  std::string session, model;
  if (!rd.str(r.request_id, kMaxRequestId) || !rd.str(session, kMaxSessionId) || !rd.str(model, kMaxModel) ||
      !rd.str(r.outcome, kMaxOutcome) || r.request_id.empty())
    return std::nullopt;
  const auto endpoint = endpoint_from(endpoint_name(static_cast<Endpoint>(f.endpoint)));
  if (!endpoint || static_cast<std::uint16_t>(*endpoint) != f.endpoint) return std::nullopt;
  r.endpoint = *endpoint;
  if (f.flags & kHasUnits) {
    double units = 0;
    std::uint8_t unit = 0;
    if (!rd.raw(&units, sizeof units) || !rd.raw(&unit, sizeof unit)) return std::nullopt;
    // A number no unit has, or none where the flag says there are units, is damage: a row with the
    // wrong unit would bill the wrong thing.
    const auto known = unit_from(unit_name(static_cast<Unit>(unit)));
    if (!known || static_cast<std::uint8_t>(*known) != unit) return std::nullopt;
    if (!std::isnan(units)) r.units = units;
    r.unit = *known;
  }
  if ((f.flags & kHasCost) && !decode_cost(rd, r)) return std::nullopt;
  r.api_key_id = f.api_key_id;
  r.user_id = f.user_id;
  r.started_at_us = f.started_at_us;
  r.duration_ms = f.duration_ms;
  r.status_code = f.status_code;
  r.stream = f.flags & kStream;
  r.tokens_estimated = f.flags & kEstimated;
  if (f.flags & kHasSession) r.session_id = std::move(session);
  if (f.flags & kHasModel) r.model = std::move(model);
  if (f.flags & kHasPrompt) r.prompt_tokens = f.prompt_tokens;
  if (f.flags & kHasCompletion) r.completion_tokens = f.completion_tokens;
  if (f.flags & kHasTotal) r.total_tokens = f.total_tokens;
  if (f.flags & kHasTtfb) r.ttfb_ms = f.ttfb_ms;
  return r;
}

std::string_view endpoint_name(Endpoint e) noexcept {
  switch (e) {
    case Endpoint::chat: return "chat";
    case Endpoint::models: return "models";
    case Endpoint::key: return "key";
    case Endpoint::embeddings: return "embeddings";
    case Endpoint::images: return "images";
    case Endpoint::audio: return "audio";
    case Endpoint::responses: return "responses";
  }
  return "";
}

std::optional<Endpoint> endpoint_from(std::string_view name) noexcept {
  for (const Endpoint e : {Endpoint::chat, Endpoint::models, Endpoint::key, Endpoint::embeddings, Endpoint::images,
                           Endpoint::audio, Endpoint::responses})
    if (endpoint_name(e) == name) return e;
  return std::nullopt;
}

std::string_view unit_name(Unit u) noexcept {
  switch (u) {
    case Unit::none: return "";
    case Unit::images: return "images";
    case Unit::characters: return "characters";
    case Unit::seconds: return "seconds";
    case Unit::bytes: return "bytes";
  }
  return "";
}

std::optional<Unit> unit_from(std::string_view name) noexcept {
  for (const Unit u : {Unit::images, Unit::characters, Unit::seconds, Unit::bytes})
    if (unit_name(u) == name) return u;
  return std::nullopt;
}

std::string_view cost_source_name(CostSource s) noexcept {
  switch (s) {
    case CostSource::none: return "";
    case CostSource::upstream: return "upstream";
    case CostSource::price_table: return "price_table";
    case CostSource::override_: return "override";
    case CostSource::unpriced: return "unpriced";
  }
  return "";
}

std::optional<CostSource> cost_source_from(std::string_view name) noexcept {
  for (const CostSource s : {CostSource::upstream, CostSource::price_table, CostSource::override_, CostSource::unpriced})
    if (cost_source_name(s) == name) return s;
  return std::nullopt;
}

namespace {
template <class T>
nlohmann::json nullable(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}
template <class T>
std::optional<T> optional_at(const nlohmann::json& j, const char* k) {
  const auto& v = j.at(k);
  if (v.is_null()) return std::nullopt;
  return v.get<T>();
}
}  // namespace

nlohmann::json to_json(const Record& r) {
  nlohmann::json j{{"request_id", r.request_id},
          {"api_key_id", r.api_key_id},
          {"user_id", r.user_id},
          {"session_id", nullable(r.session_id)},
          {"model", nullable(r.model)},
          {"stream", r.stream},
          {"status_code", r.status_code},
          {"outcome", r.outcome},
          {"prompt_tokens", nullable(r.prompt_tokens)},
          {"completion_tokens", nullable(r.completion_tokens)},
          {"total_tokens", nullable(r.total_tokens)},
          {"tokens_estimated", r.tokens_estimated},
          {"started_at_us", r.started_at_us},
          {"duration_ms", r.duration_ms},
          {"ttfb_ms", nullable(r.ttfb_ms)},
          {"endpoint", endpoint_name(r.endpoint)}};
  // Only rows with units carry the keys, so lines of token-metered requests read as they did before.
  if (r.unit != Unit::none) {
    j["units"] = nullable(r.units);
    j["unit"] = unit_name(r.unit);
  }
  // Amounts as integers of pico-dollars: exact in JSON, where a decimal would pass through a double.
  if (has_cost(r)) {
    j["cost_source"] = r.cost_source == CostSource::none ? nlohmann::json(nullptr)
                                                         : nlohmann::json(cost_source_name(r.cost_source));
    j["cost_pico"] = nullable(r.cost);
    j["upstream_cost_pico"] = nullable(r.upstream_cost);
    j["price_version"] = nullable(r.price_version);
  }
  return j;
}

Record from_json(const nlohmann::json& j) {
  Record r;
  r.request_id = j.at("request_id").get<std::string>();
  r.api_key_id = j.at("api_key_id").get<std::int64_t>();
  r.user_id = j.at("user_id").get<std::int64_t>();
  r.session_id = optional_at<std::string>(j, "session_id");
  r.model = optional_at<std::string>(j, "model");
  r.stream = j.at("stream").get<bool>();
  r.status_code = j.at("status_code").get<std::int32_t>();
  r.outcome = j.at("outcome").get<std::string>();
  r.prompt_tokens = optional_at<std::int32_t>(j, "prompt_tokens");
  r.completion_tokens = optional_at<std::int32_t>(j, "completion_tokens");
  r.total_tokens = optional_at<std::int32_t>(j, "total_tokens");
  r.tokens_estimated = j.at("tokens_estimated").get<bool>();
  r.started_at_us = j.at("started_at_us").get<std::int64_t>();
  r.duration_ms = j.at("duration_ms").get<double>();
  r.ttfb_ms = optional_at<double>(j, "ttfb_ms");
  // Journal files written before the column existed have no endpoint: they were chat requests or the
  // two small routes, and chat is what the column says for all of those rows.
  if (const auto it = j.find("endpoint"); it != j.end()) {
    const auto e = endpoint_from(it->get<std::string>());
    if (!e) throw std::invalid_argument("unknown endpoint in a usage record: " + it->get<std::string>());
    r.endpoint = *e;
  }
  // Lines written before units existed have neither key, and neither has a line of a row without units.
  if (const auto it = j.find("unit"); it != j.end()) {
    const auto u = unit_from(it->get<std::string>());
    if (!u) throw std::invalid_argument("unknown unit in a usage record: " + it->get<std::string>());
    r.unit = *u;
    r.units = optional_at<double>(j, "units");
  }
  if (const auto it = j.find("cost_source"); it != j.end()) {
    if (!it->is_null()) {
      const auto c = cost_source_from(it->get<std::string>());
      if (!c) throw std::invalid_argument("unknown cost source in a usage record: " + it->get<std::string>());
      r.cost_source = *c;
    }
    r.cost = optional_at<std::int64_t>(j, "cost_pico");
    r.upstream_cost = optional_at<std::int64_t>(j, "upstream_cost_pico");
    r.price_version = optional_at<std::int64_t>(j, "price_version");
  }
  return r;
}

}  // namespace lagoon::usage
