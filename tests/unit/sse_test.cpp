// The SSE scanner on every way a stream can be cut into reads, and the usage chunk reader.
#include <gtest/gtest.h>

#include <climits>

#include "lagoon/chat/sse.hpp"

using namespace lagoon::chat;

namespace {

std::vector<SseEvent> scan_in_pieces(std::string_view stream, std::size_t piece) {
  SseScanner s;
  std::vector<SseEvent> out;
  for (std::size_t i = 0; i < stream.size(); i += piece) EXPECT_TRUE(s.feed(stream.substr(i, piece), out));
  return out;
}

std::string joined_raw(const std::vector<SseEvent>& events) {
  std::string all;
  for (const auto& e : events) all += e.raw;
  return all;
}

const std::string kOpenAiStream =
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n"
    ": keep-alive comment\n\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n"
    "data: [DONE]\n\n";

}  // namespace

TEST(SseScanner, FindsTheSameEventsHoweverTheStreamIsCut) {
  const auto whole = scan_in_pieces(kOpenAiStream, kOpenAiStream.size());
  ASSERT_EQ(whole.size(), 5u);
  EXPECT_EQ(whole[1].has_data, false);
  EXPECT_EQ(whole[4].data, "[DONE]");
  for (std::size_t piece = 1; piece <= kOpenAiStream.size(); ++piece) {
    const auto events = scan_in_pieces(kOpenAiStream, piece);
    ASSERT_EQ(events.size(), whole.size()) << "piece " << piece;
    for (std::size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].data, whole[i].data);
      EXPECT_EQ(events[i].raw, whole[i].raw);
    }
  }
}

TEST(SseScanner, HandlesCrLfAndLoneCrLineEndsAndKeepsEveryByte) {
  for (std::string eol : {"\r\n", "\r", "\n"}) {
    const std::string stream = "data: a" + eol + "data: b" + eol + eol + "event: x" + eol + "data: [DONE]" + eol + eol;
    for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
      const auto events = scan_in_pieces(stream, piece);
      ASSERT_EQ(events.size(), 2u) << "eol " << (int)eol[0] << " piece " << piece;
      EXPECT_EQ(events[0].data, "a\nb");
      EXPECT_EQ(events[1].data, "[DONE]");
      // Nothing is lost or invented: the events' bytes are the stream (a CRLF's last LF may still be
      // waiting to open the next event).
      std::string all = joined_raw(events);
      EXPECT_EQ(all, stream.substr(0, all.size()));
      EXPECT_GE(all.size() + 1, stream.size());
    }
  }
}

TEST(SseScanner, ALeadingBomIsKeptButIsNotContent) {
  const std::string stream = "\xEF\xBB\xBF" "data: x\n\n";
  for (std::size_t piece = 1; piece <= stream.size(); ++piece) {
    const auto events = scan_in_pieces(stream, piece);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "x");
    EXPECT_EQ(events[0].raw, stream);
  }
  // Bytes that start like a BOM but are not one are content.
  const auto not_bom = scan_in_pieces("\xEF" "data: y\n\n", 1);
  ASSERT_EQ(not_bom.size(), 1u);
  EXPECT_FALSE(not_bom[0].has_data);  // the field name is "\xEF" "data", not "data"
}

TEST(SseScanner, DataWithoutASpaceAndFieldsWithoutValues) {
  const auto events = scan_in_pieces("data:x\ndata\nid: 4\nretry: 10\n\n", 3);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "x\n");
}

TEST(SseScanner, AnOversizedEventIsAnError) {
  SseScanner s(1024);
  std::vector<SseEvent> out;
  EXPECT_TRUE(s.feed("data: " + std::string(1000, 'a'), out));
  EXPECT_FALSE(s.feed(std::string(100, 'a'), out));
  EXPECT_FALSE(s.feed("\n\n", out));
  EXPECT_TRUE(out.empty());
}

TEST(SseScanner, ErrorTextThatLooksLikeAnEventStaysInsideItsJson) {
  // JSON escapes newlines, so "\n\ndata:" inside a string cannot end an event.
  const std::string stream = "data: {\"error\":{\"message\":\"bad \\n\\ndata: [DONE]\"}}\n\n";
  const auto events = scan_in_pieces(stream, 7);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].data.find("\\n\\ndata: [DONE]"), std::string::npos);
}

TEST(ChunkUsage, ReadsTheUsageChunkAndIgnoresNullUsage) {
  EXPECT_FALSE(usage_of_chunk(R"({"choices":[{"delta":{}}],"usage":null})"));
  EXPECT_FALSE(usage_of_chunk(R"({"choices":[{"delta":{"content":"usage"}}]})"));
  auto u = usage_of_chunk(R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->usage_only);
  EXPECT_EQ(u->prompt_tokens, 5);
  EXPECT_EQ(u->completion_tokens, 2);
  EXPECT_EQ(u->total_tokens, 7);
  auto inline_usage = usage_of_chunk(R"({"choices":[{"delta":{}}], "usage" : {"total_tokens":9}})");
  ASSERT_TRUE(inline_usage);
  EXPECT_FALSE(inline_usage->usage_only);
  EXPECT_EQ(inline_usage->total_tokens, 9);
}

TEST(UsageOfObject, ReadsTopLevelUsageOnlyAndWhetherChoicesIsEmpty) {
  using lagoon::chat::usage_of_object;
  auto u = usage_of_object(R"({"id":"x","choices":[{"index":0,"message":{"content":"\"usage\":{\"total_tokens\":999}",
      "usage":{"total_tokens":5}}}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,
      "prompt_tokens_details":{"cached_tokens":1}}})");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->prompt_tokens, 3);
  EXPECT_EQ(u->completion_tokens, 4);
  EXPECT_EQ(u->total_tokens, 7);
  EXPECT_FALSE(u->usage_only);
  auto only = usage_of_object(R"({"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})");
  ASSERT_TRUE(only);
  EXPECT_TRUE(only->usage_only);
  EXPECT_EQ(only->total_tokens, 3);
  auto partial = usage_of_object(R"({"usage":{"prompt_tokens":"many","total_tokens":18446744073709551615}})");
  ASSERT_TRUE(partial);
  EXPECT_FALSE(partial->prompt_tokens);
  EXPECT_EQ(partial->total_tokens, LLONG_MAX);
  EXPECT_FALSE(usage_of_object(R"({"usage":null,"choices":[]})"));
  EXPECT_FALSE(usage_of_object(R"({"usage":{"total_tokens":1})"));  // truncated: not JSON
  EXPECT_FALSE(usage_of_object("[1,2]"));
  EXPECT_FALSE(usage_of_object(R"({"choices":[{"usage":{"total_tokens":5}}]})"));  // not top-level
}

// The fast path (skim, then parse "usage" and "cost" alone) answers as the full parse does on valid JSON,
// whatever the strings, nesting, spacing, key order and repeated or escaped keys.
TEST(UsageOfObject, TheSkimAgreesWithTheFullParse) {
  using lagoon::chat::ChunkUsage;
  const char* docs[] = {
      R"({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":21,"total_tokens":30}})",
      R"( { "usage" : { "prompt_tokens" : 1 , "total_tokens" : 2 } , "choices" : [ ] } )",
      R"({"choices":[{"c":"a \"quoted\" { brace ] and \\ backslash \\"},{"d":[1,[2,{"e":"}"}]]}],"usage":{"total_tokens":4}})",
      R"({"choices":{"0":{}},"usage":{"total_tokens":4}})",
      R"({"choices":null,"usage":{"total_tokens":4}})",
      R"({"choices":[1,"two",null,true,{"x":[]}],"usage":{"total_tokens":4,"prompt_tokens_details":{"cached_tokens":3,"cache_creation_input_tokens":2}}})",
      R"({"usage":{"total_tokens":1},"usage":{"prompt_tokens":2}})",
      R"({"us\u0061ge":{"total_tokens":1}})",
      R"({"usage":{"total_tokens":1},"cost":{"usd":0.000123,"diem":0}})",
      R"({"cost":{"usd":12},"usage":{"completion_tokens":5}})",
      R"({"cost":{"usd":-1},"usage":{"completion_tokens":5},"choices":[]})",
      R"({"usage":[1,2],"choices":[]})",
      R"({"usage":"none"})",
      R"({"usage":{}})",
      R"({})",
      R"({"a":{"usage":{"total_tokens":9}},"b":[{"usage":{"total_tokens":8}}]})",
      R"({"usage":{"total_tokens":1.5e3,"prompt_tokens":-4}})",
      R"({"usage":{"total_tokens":18446744073709551616}})",
      R"({"text":"\u00e9\ud83d\ude00","usage":{"total_tokens":7}})",
      R"({"choices":[],"choices":[{}],"usage":{"total_tokens":7}})",
  };
  auto same = [](const std::optional<ChunkUsage>& a, const std::optional<ChunkUsage>& b) {
    if (a.has_value() != b.has_value()) return false;
    if (!a) return true;
    return a->prompt_tokens == b->prompt_tokens && a->completion_tokens == b->completion_tokens &&
           a->total_tokens == b->total_tokens && a->cached_tokens == b->cached_tokens &&
           a->cache_write_tokens == b->cache_write_tokens && a->cost_usd == b->cost_usd &&
           a->cost_diem == b->cost_diem && a->usage_only == b->usage_only;
  };
  int found = 0;
  for (const char* doc : docs) {
    const auto fast = lagoon::chat::usage_of_object(doc);
    EXPECT_TRUE(same(fast, lagoon::chat::usage_of_object_full_parse(doc))) << doc;
    found += fast.has_value();
  }
  EXPECT_GE(found, 14);  // most of them have a usage: the comparison is not between two nullopts
}
