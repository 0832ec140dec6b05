// lagoon-mock-upstream's model catalog, in Venice's shapes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lagoon/mock/catalog.hpp"

namespace mock = lagoon::mock;
using nlohmann::json;

TEST(MockCatalog, ModelsAreFilteredByTypeAndCarryVenicesModelSpec) {
  auto text = json::parse(*mock::models_body());
  EXPECT_EQ(text, json::parse(*mock::models_body("text")));
  EXPECT_EQ(text["object"], "list");
  EXPECT_EQ(text["type"], "text");
  ASSERT_FALSE(text["data"].empty());
  for (const auto& m : text["data"]) {
    EXPECT_EQ(m["type"], "text");
    EXPECT_EQ(m["object"], "model");
    EXPECT_EQ(m["owned_by"], "venice.ai");
    EXPECT_TRUE(m["model_spec"]["pricing"]["input"]["usd"].is_number());
    EXPECT_TRUE(m["model_spec"]["capabilities"].contains("supportsFunctionCalling"));
    EXPECT_EQ(m["context_length"], m["model_spec"]["availableContextTokens"]);
    EXPECT_TRUE(m["model_spec"]["traits"].is_array());
  }
  std::size_t total = 0;
  for (const char* type : {"asr", "embedding", "image", "music", "text", "tts", "upscale", "inpaint", "video"}) {
    auto list = json::parse(*mock::models_body(type));
    ASSERT_FALSE(list["data"].empty()) << type;
    for (const auto& m : list["data"]) EXPECT_EQ(m["type"], type);
    total += list["data"].size();
  }
  EXPECT_EQ(json::parse(*mock::models_body("all"))["data"].size(), total);
  const auto code = json::parse(*mock::models_body("code"));  // a range-for over a temporary's member dangles
  for (const auto& m : code["data"])
    EXPECT_TRUE(m["model_spec"]["capabilities"]["optimizedForCode"].get<bool>());
  EXPECT_TRUE(json::parse(*mock::models_body("asr"))["data"][0]["model_spec"]["pricing"].contains("per_audio_second"));
  EXPECT_TRUE(json::parse(*mock::models_body("tts"))["data"][0]["model_spec"].contains("voices"));
  EXPECT_FALSE(mock::models_body("bogus"));
  EXPECT_FALSE(mock::known_model_type("bogus"));
}

TEST(MockCatalog, TraitsMappingsAndStyles) {
  auto traits = json::parse(*mock::model_traits_body());
  EXPECT_EQ(traits["type"], "text");
  EXPECT_EQ(traits["data"]["default"], "llama-3.3-70b");
  EXPECT_EQ(json::parse(*mock::model_traits_body("image"))["data"]["default"], "venice-sd35");
  auto mapping = json::parse(*mock::compatibility_mapping_body("embedding"));
  EXPECT_EQ(mapping["object"], "list");
  EXPECT_EQ(mapping["data"]["text-embedding-3-small"], "text-embedding-bge-m3");
  EXPECT_FALSE(mock::compatibility_mapping_body("bogus"));
  auto styles = json::parse(mock::image_styles_body());
  EXPECT_EQ(styles["object"], "list");
  EXPECT_FALSE(styles["data"].empty());
  EXPECT_EQ(mock::models_body("all"), mock::models_body("all"));  // the same bytes every time
}

TEST(MockCatalog, OneTextModelHasCachePricesAndAnExtendedTier) {
  const auto text = json::parse(*mock::models_body("text"));
  const json* cached = nullptr;
  for (const auto& m : text["data"])
    if (m["id"] == "claude-mock-sonnet") cached = &m;
  ASSERT_TRUE(cached);
  const json& pricing = (*cached)["model_spec"]["pricing"];
  EXPECT_EQ(pricing["input"]["usd"], 3);
  EXPECT_EQ(pricing["output"]["usd"], 15);
  EXPECT_EQ(pricing["cache_input"]["usd"], 0.3);
  EXPECT_EQ(pricing["cache_write"]["usd"], 3.75);
  EXPECT_EQ(pricing["extended"]["context_token_threshold"], 200000);
  EXPECT_EQ(pricing["extended"]["input"]["usd"], 6);
  EXPECT_EQ(pricing["extended"]["output"]["usd"], 22.5);
  EXPECT_EQ(pricing["extended"]["cache_input"]["usd"], 0.6);
  EXPECT_EQ(pricing["extended"]["cache_write"]["usd"], 7.5);
  EXPECT_EQ((*cached)["context_length"], 1000000);
  // The other text models keep the prices tests were written against, and their traits.
  EXPECT_EQ(text["data"][0]["id"], "llama-3.3-70b");
  EXPECT_EQ(text["data"][0]["model_spec"]["pricing"],
            json::parse(R"({"input":{"usd":0.7,"diem":7},"output":{"usd":2.8,"diem":28}})"));
  EXPECT_EQ(json::parse(*mock::model_traits_body())["data"]["default_reasoning"], "qwen3-235b");
}
