// POST /mock/catalog's control of lagoon-mock-upstream's catalog: parsing it, the model list it makes,
// and what each catalog route answers under it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lagoon/mock/catalog.hpp"
#include "lagoon/mock/catalog_control.hpp"
#include "lagoon/mock/cost.hpp"

namespace mock = lagoon::mock;
using nlohmann::json;

namespace {

mock::Catalog catalog(std::string_view control_body) {
  std::string problem;
  auto control = mock::parse_catalog_control(control_body, problem);
  EXPECT_TRUE(control) << control_body << ": " << problem;
  return mock::controlled_catalog(control.value_or(mock::CatalogControl{}));
}

std::string problem_of(std::string_view control_body) {
  std::string problem;
  EXPECT_FALSE(mock::parse_catalog_control(control_body, problem)) << control_body;
  return problem;
}

json ids(const mock::CatalogAnswer& answer) {
  const json list = json::parse(answer.body);  // a range-for over a temporary's member dangles
  json out = json::array();
  for (const auto& m : list["data"]) out.push_back(m["id"]);
  return out;
}

}  // namespace

TEST(MockCatalogControl, AnEmptyObjectIsTheDefaultCatalogByteForByte) {
  const auto c = catalog("{}");
  EXPECT_EQ(c.control.status, 200u);
  EXPECT_FALSE(c.control.malformed);
  EXPECT_EQ(c.models, mock::default_models());
  for (const char* type : {"", "text", "all", "image", "code"}) {
    EXPECT_EQ(mock::catalog_answer(c, "/models", type).body, *mock::models_body(type)) << type;
    EXPECT_EQ(mock::catalog_answer(c, "/models/traits", type).body, *mock::model_traits_body(type)) << type;
    EXPECT_EQ(mock::catalog_answer(c, "/models/compatibility_mapping", type).body,
              *mock::compatibility_mapping_body(type))
        << type;
  }
  EXPECT_EQ(mock::catalog_answer(c, "/image/styles", "").body, mock::image_styles_body());
}

TEST(MockCatalogControl, RefusesWhatItWouldNotDo) {
  EXPECT_EQ(problem_of("not json"), "expected a JSON object");
  EXPECT_EQ(problem_of("[]"), "expected a JSON object");
  EXPECT_NE(problem_of(R"({"stauts": 503})").find("unknown field stauts"), std::string::npos);
  for (const char* bad : {R"({"status": 99})", R"({"status": 600})", R"({"status": "503"})", R"({"status": 503.5})"})
    EXPECT_EQ(problem_of(bad), "status must be an integer from 100 to 599") << bad;
  EXPECT_EQ(problem_of(R"({"malformed": 1})"), "malformed must be true or false");
  EXPECT_EQ(problem_of(R"({"drop": "llama-3.3-70b"})"), "drop must be an array of model ids");
  EXPECT_EQ(problem_of(R"({"drop": ["llama-3.3-70b", "gpt-5"]})"), "drop: no model gpt-5");
  EXPECT_EQ(problem_of(R"({"pricing": {"gpt-5": {}}})"), "pricing: no model gpt-5");
  EXPECT_EQ(problem_of(R"({"pricing": {"llama-3.3-70b": 1}})"),
            "pricing must be an object of model id to pricing object");
}

TEST(MockCatalogControl, AStatusFailsModelsOfEveryTypeAndNothingElse) {
  const auto c = catalog(R"({"status": 503})");
  for (const char* type : {"", "text", "all", "image"}) {
    const auto answer = mock::catalog_answer(c, "/models", type);
    EXPECT_EQ(answer.status, 503u) << type;
    EXPECT_EQ(json::parse(answer.body), json::parse(R"({"error": "mock upstream error 503"})"));
  }
  EXPECT_EQ(mock::catalog_answer(c, "/models", "bogus").status, 400u);  // checked first, as Venice does
  EXPECT_EQ(mock::catalog_answer(c, "/models/traits", "text").status, 200u);
  EXPECT_EQ(mock::catalog_answer(c, "/image/styles", "").status, 200u);
}

TEST(MockCatalogControl, MalformedModelsAre200AndNotJson) {
  const auto c = catalog(R"({"malformed": true})");
  const auto answer = mock::catalog_answer(c, "/models", "text");
  EXPECT_EQ(answer.status, 200u);
  EXPECT_FALSE(json::accept(answer.body));
  EXPECT_EQ(answer.body, mock::models_body("text")->substr(0, answer.body.size()));  // its first half
  EXPECT_TRUE(json::accept(mock::catalog_answer(c, "/models/traits", "text").body));
}

TEST(MockCatalogControl, DroppedModelsLeaveEveryAnswer) {
  const auto c = catalog(R"({"drop": ["llama-3.3-70b", "venice-sd35"]})");
  const json text = ids(mock::catalog_answer(c, "/models", "text"));
  EXPECT_EQ(text, json::parse(R"(["qwen3-235b", "mistral-31-24b", "venice-uncensored",
                                  "qwen3-coder-480b-a35b-instruct", "claude-mock-sonnet"])"));
  EXPECT_EQ(ids(mock::catalog_answer(c, "/models", "image")), json::parse(R"(["hidream"])"));
  const json traits = json::parse(mock::catalog_answer(c, "/models/traits", "text").body)["data"];
  EXPECT_FALSE(traits.contains("default"));  // llama-3.3-70b's
  EXPECT_EQ(traits["default_reasoning"], "qwen3-235b");
  const json mapping = json::parse(mock::catalog_answer(c, "/models/compatibility_mapping", "text").body)["data"];
  EXPECT_EQ(mapping, json::parse(R"({"gpt-4o-mini": "venice-uncensored", "o3-mini": "qwen3-235b"})"));
  EXPECT_FALSE(mock::model_pricing(c.models, "llama-3.3-70b"));  // so a chat with it has no cost
}

TEST(MockCatalogControl, NewPricingIsListedAndPricesChats) {
  const auto c = catalog(R"({"pricing": {"llama-3.3-70b": {"input": {"usd": 1.25, "diem": 12.5},
                                                           "output": {"usd": 5, "diem": 50}}}})");
  const json models = json::parse(mock::catalog_answer(c, "/models", "text").body)["data"];
  EXPECT_EQ(models[0]["id"], "llama-3.3-70b");
  EXPECT_EQ(models[0]["model_spec"]["pricing"], json::parse(R"({"input": {"usd": 1.25, "diem": 12.5},
                                                                "output": {"usd": 5, "diem": 50}})"));
  EXPECT_EQ(models[1]["model_spec"]["pricing"]["input"]["usd"], 0.7);  // the others keep theirs
  // 1000 × 1.25 + 100 × 5, per 1M tokens.
  EXPECT_EQ(mock::cost_picousd(*mock::model_pricing(c.models, "llama-3.3-70b"), {1000, 100}), 1'750'000'000u);
}

TEST(MockCatalogControl, EachControlReplacesThePrevious) {
  // A control is the whole state: what the last one dropped is back unless this one drops it too.
  std::string problem;
  const auto second = mock::parse_catalog_control(R"({"status": 500})", problem);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->drop.empty());
  EXPECT_EQ(mock::controlled_catalog(*second).models, mock::default_models());
}
