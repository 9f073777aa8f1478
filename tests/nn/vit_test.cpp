#include "det/nn/vit.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>

#include "det/nn/safetensors.h"
#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::nn {
namespace {

const std::string kViTData = std::string(DET_TEST_DATA_DIR) + "/nn/";

ViTOptions tiny() {
  ViTOptions o;
  o.img_size(32).patch_size(8).embed_dim(24).depth(2).num_heads(3).mlp_dim(48).num_classes(7);
  o.drop_rate(0.2).drop_path_rate(0.1);
  return o;
}

std::string tmp_dir() {
  auto d = std::filesystem::temp_directory_path() / ("det-vit-" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

TEST(ViT, ParameterCountsOfTheVariants) {
  auto counts = nlohmann::json::parse(util::read_file(kViTData + "vit_params.json"));
  const std::map<std::string, double> millions = {
      {"ti", 5.72}, {"s", 22.05}, {"b", 86.57}, {"l", 304.33}};
  for (const auto& [name, m] : millions) {
    auto o = ViTOptions::variant(name);
    o.init_weights(false);
    ViT vit(o);
    const int64_t n = count_parameters(*vit);
    EXPECT_EQ(n, counts.at(name).get<int64_t>()) << name;
    EXPECT_NEAR(static_cast<double>(n) / 1e6, m, 0.005) << name;
  }
  // Backbone of B/16 without the head: 85,798,656 (spec §3.2); jeonsworld's 85.8M.
  auto b = ViTOptions::variant("ViT-B/16");
  b.init_weights(false);
  EXPECT_EQ(count_parameters(*ViT(b)) - (768 * 1000 + 1000), 85798656);
  EXPECT_EQ(ViTOptions::variant("vit_l16").depth(), 24);
  EXPECT_THROW(ViTOptions::variant("h"), ConfigError);
}

// Logits of an independent plain-PyTorch ViT in HF's layout
// (scripts/testdata/make_vit_expected.py), loaded through the HF name mapping.
TEST(ViT, LoadsHFWeightsAndMatchesPyTorch) {
  ViT vit(tiny());
  auto summary = load_hf_vit(*vit, kViTData + "vit_tiny_hf.safetensors");
  EXPECT_NE(summary.find("including the head"), std::string::npos) << summary;
  auto file = read_safetensors(kViTData + "vit_tiny_io.safetensors");
  vit->eval();
  torch::NoGradGuard g;
  auto y = vit->forward(file.tensors.at("x"));
  EXPECT_LT((y - file.tensors.at("logits")).abs().max().item<double>(), 1e-4);
}

TEST(ViT, ResizesPositionEmbeddingsForAnotherImageSize) {
  auto o = tiny();
  o.img_size(48);
  ViT vit(o);
  auto summary = load_hf_vit(*vit, kViTData + "vit_tiny_hf.safetensors");
  EXPECT_NE(summary.find("resized to a 6x6 grid"), std::string::npos) << summary;
  auto file = read_safetensors(kViTData + "vit_tiny_io.safetensors");
  vit->eval();
  torch::NoGradGuard g;
  EXPECT_LT((vit->forward(file.tensors.at("x48")) - file.tensors.at("logits48"))
                .abs()
                .max()
                .item<double>(),
            1e-4);
}

TEST(ViT, NewHeadWhenClassesDiffer) {
  auto o = tiny();
  o.num_classes(10);
  ViT vit(o);
  auto summary = load_hf_vit(*vit, kViTData + "vit_tiny_hf.safetensors");
  EXPECT_NE(summary.find("the head is new"), std::string::npos) << summary;
}

TEST(ViT, MismatchesNameTheKey) {
  auto o = tiny();
  o.mlp_dim(64);
  ViT wrong(o);
  try {
    load_hf_vit(*wrong, kViTData + "vit_tiny_hf.safetensors");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(
        std::string(e.what()).find(
            "'vit.encoder.layer.0.intermediate.dense.bias' has shape [48], the model expects [64]"),
        std::string::npos)
        << e.what();
  }
  auto shallow = tiny();
  shallow.depth(1);
  ViT one(shallow);
  try {
    load_hf_vit(*one, kViTData + "vit_tiny_hf.safetensors");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("vit.encoder.layer.1."), std::string::npos) << e.what();
  }
  EXPECT_THROW(hf_to_vit({{"foo.bar", torch::zeros({1})}}, 2, true, "f"), DataError);
}

// Weights of another dtype are refused by key, file and both dtypes, unless conversion is asked.
TEST(ViT, DtypeMismatchesNameTheKeyUnlessConverted) {
  auto file = read_safetensors(kViTData + "vit_tiny_hf.safetensors");
  const std::string key = "vit.encoder.layer.0.intermediate.dense.weight";
  ASSERT_TRUE(file.tensors.count(key));
  file.tensors[key] = file.tensors[key].to(torch::kFloat16);
  auto path = tmp_dir() + "/f16.safetensors";
  write_safetensors(path, file.tensors);
  ViT vit(tiny());
  try {
    load_hf_vit(*vit, path);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(
        std::string(e.what()).find(path + ": tensor '" + key + "' is F16 but the model's is F32"),
        std::string::npos)
        << e.what();
  }
  // Position embeddings (resized when the grid differs) and the head are checked too.
  file.tensors["vit.embeddings.position_embeddings"] =
      file.tensors["vit.embeddings.position_embeddings"].to(torch::kFloat64);
  write_safetensors(path, file.tensors);
  try {
    load_hf_vit(*vit, path);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'vit.embeddings.position_embeddings' is F64"),
              std::string::npos)
        << e.what();
  }
  auto summary = load_hf_vit(*vit, path, /*convert_dtypes=*/true);
  EXPECT_NE(summary.find("including the head"), std::string::npos) << summary;
  EXPECT_EQ(vit->pos_embed.scalar_type(), torch::kFloat32);
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST(ViT, ExportRoundTripsThroughSafetensors) {
  torch::manual_seed(4);
  ViT a(tiny());
  auto path = tmp_dir() + "/exported.safetensors";
  export_hf_vit(*a, path);
  auto file = read_safetensors(path);
  EXPECT_EQ(file.metadata.at("hidden_size"), "24");
  EXPECT_EQ(file.tensors.at("encoder.layer.1.attention.attention.key.weight").sizes(),
            (std::vector<int64_t>{24, 24}));
  EXPECT_EQ(file.tensors.size(), 8u + 2u * 16u);
  torch::manual_seed(5);
  ViT b(tiny());
  load_hf_vit(*b, path);
  auto sa = state_dict(*a), sb = state_dict(*b);
  for (const auto& [k, v] : sa) EXPECT_TRUE(torch::equal(v, sb.at(k))) << k;
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST(ViT, SmallInputsWithSmallPatches) {
  auto o = ViTOptions::variant("ti", 4);
  o.img_size(32).num_classes(10).depth(1);
  ViT vit(o);
  EXPECT_EQ(vit->pos_embed.size(1), 65);
  EXPECT_EQ(vit->forward(torch::zeros({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_THROW(vit->forward(torch::zeros({1, 3, 40, 40})), Error);
  ViTOptions bad;
  EXPECT_THROW(bad.update_from_json(
                   config::Args(nlohmann::json{{"patch_size", 15}}, "hyperparameters.model")),
               ConfigError);
  EXPECT_THROW(
      bad.update_from_json(config::Args(nlohmann::json{{"heads", 7}}, "hyperparameters.model")),
      ConfigError);
}

}  // namespace
}  // namespace det::nn
