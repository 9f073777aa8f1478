#include "det/data/timm_transform.h"

#include <cmath>

#include "det/data/augment.h"
#include "det/data/resize.h"
#include "det/util/error.h"
#include "det/util/strings.h"

namespace det::data {

namespace {

double number(const nlohmann::json& args, const char* key, double fallback, const std::string& where) {
  if (!args.contains(key) || args[key].is_null()) return fallback;
  if (!args[key].is_number()) throw ConfigError(where + "." + key + ": expected a number, found " + args[key].dump());
  return args[key].get<double>();
}

std::pair<double, double> range(const nlohmann::json& args, const char* key, std::pair<double, double> fallback,
                                const std::string& where) {
  if (!args.contains(key) || args[key].is_null()) return fallback;
  const auto& v = args[key];
  if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number() || v[0].get<double>() > v[1].get<double>())
    throw ConfigError(where + "." + key + ": expected [low, high] with low <= high, found " + v.dump());
  return {v[0].get<double>(), v[1].get<double>()};
}

}  // namespace

Pipeline make_timm_transform(const nlohmann::json& args_in, int64_t img_size, const std::vector<float>& mean,
                             const std::vector<float>& std, bool training, const std::string& where) {
  nlohmann::json args = args_in.is_null() ? nlohmann::json::object() : args_in;
  if (!args.is_object()) throw ConfigError(where + ": expected a mapping of timm transform arguments, found " + args.dump());
  const std::vector<std::string> known = {"scale", "ratio", "hflip", "vflip", "color_jitter", "auto_augment",
                                          "interpolation", "re_prob", "re_mode", "re_count", "re_num_splits",
                                          "crop_pct", "mean", "std"};
  for (auto it = args.begin(); it != args.end(); ++it)
    if (std::find(known.begin(), known.end(), it.key()) == known.end())
      throw ConfigError(where + "." + it.key() + ": unknown timm transform argument" + util::did_you_mean(it.key(), known) +
                        " (known: " + util::join(known, ", ") + ")");
  std::string interp = args.value("interpolation", std::string("bilinear"));
  if (interp.empty()) interp = "bilinear";
  const bool random_interp = interp == "random";
  const Interpolation filter = random_interp ? Interpolation::kBilinear : parse_interpolation(interp, where + ".interpolation");
  Pipeline p;
  p.normalize(mean, std);
  if (!training) {
    const double crop_pct = number(args, "crop_pct", 0.875, where);
    if (!(crop_pct > 0)) throw ConfigError(where + ".crop_pct: must be > 0");
    p.add(std::make_shared<Resize>(static_cast<int64_t>(std::floor(static_cast<double>(img_size) / crop_pct)), filter));
    p.add(std::make_shared<CenterCrop>(img_size));
    return p;
  }
  p.add(std::make_shared<RandomResizedCrop>(img_size, range(args, "scale", {0.08, 1.0}, where),
                                            range(args, "ratio", {3.0 / 4.0, 4.0 / 3.0}, where), filter, random_interp));
  const double hflip = number(args, "hflip", 0.5, where), vflip = number(args, "vflip", 0.0, where);
  if (hflip > 0) p.add(std::make_shared<RandomHorizontalFlip>(hflip));
  if (vflip > 0) p.add(std::make_shared<RandomVerticalFlip>(vflip));
  std::string aa = args.contains("auto_augment") && args["auto_augment"].is_string() ? args["auto_augment"].get<std::string>() : "";
  if (!aa.empty()) {
    if (aa.rfind("rand", 0) != 0)
      throw ConfigError(where + ".auto_augment: only RandAugment policies ('rand-...') are available, found '" + aa + "'");
    augment::Color fill{};
    for (size_t i = 0; i < 3; ++i) {
      double m = mean.empty() ? 0.5 : mean[std::min(i, mean.size() - 1)];
      fill[i] = static_cast<uint8_t>(std::min(255.0, std::nearbyint(255.0 * m)));  // timm: round(255 * mean)
    }
    std::optional<augment::Resample> resample;
    if (!random_interp) resample = filter == Interpolation::kBicubic ? augment::Resample::kBicubic : augment::Resample::kBilinear;
    try {
      p.add(std::make_shared<augment::RandAugment>(augment::RandAugmentConfig::parse(aa), fill, 0.45, resample));
    } catch (const std::invalid_argument& e) {
      throw ConfigError(where + ".auto_augment: '" + aa + "': " + e.what());
    }
  } else {
    // timm: a single color_jitter value jitters brightness, contrast and saturation alike.
    double cj = number(args, "color_jitter", 0.4, where);
    if (args.contains("color_jitter") && args["color_jitter"].is_array()) {
      auto v = args["color_jitter"];
      if (v.size() != 3 && v.size() != 4) throw ConfigError(where + ".color_jitter: expected a number or 3-4 numbers");
      p.add(std::make_shared<augment::ColorJitter>(v[0].get<double>(), v[1].get<double>(), v[2].get<double>(),
                                                   v.size() == 4 ? v[3].get<double>() : 0.0));
    } else if (cj > 0) {
      p.add(std::make_shared<augment::ColorJitter>(cj, cj, cj, 0.0));
    }
  }
  const double re_prob = number(args, "re_prob", 0.0, where);
  if (re_prob > 0) {
    std::string mode = args.value("re_mode", std::string("const"));
    if (mode != "pixel")
      throw ConfigError(where + ".re_mode: only 'pixel' random erasing is available, found '" + mode + "'");
    int count = static_cast<int>(number(args, "re_count", 1, where));
    p.add(std::make_shared<augment::RandomErasing>(re_prob, 0.02, 1.0 / 3, 0.3, 1, count));
  }
  return p;
}

}  // namespace det::data
