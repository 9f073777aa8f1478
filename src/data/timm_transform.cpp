#include "det/data/timm_transform.h"

#include <cmath>
#include <optional>

#include "det/data/augment.h"
#include "det/data/resize.h"
#include "det/util/error.h"
#include "det/util/strings.h"

namespace det::data {

namespace {

// A [low, high] argument (scale, ratio); null or missing gives the fallback.
std::pair<double, double> range_arg(const config::Args& args, const char* key,
                                    std::pair<double, double> fallback) {
  if (!args.has(key)) return fallback;
  const config::Args v = args[key];
  auto lh = v.as<std::vector<double>>(config::Range::at_least(0));
  if (lh.size() != 2 || lh[0] > lh[1]) v.fail_expected("[low, high] with low <= high");
  return {lh[0], lh[1]};
}

// timm's auto_augment: a RandAugment policy; `filter`: the fixed interpolation, none when random.
void add_rand_augment(Pipeline& p, const config::Args& args, const std::string& aa,
                      const std::vector<float>& mean, std::optional<Interpolation> filter) {
  if (aa.rfind("rand", 0) != 0)
    args["auto_augment"].fail("only RandAugment policies ('rand-...') are available, found " +
                              util::quote(aa));
  augment::Color fill{};
  for (size_t i = 0; i < 3; ++i) {
    double m = mean.empty() ? 0.5 : mean[std::min(i, mean.size() - 1)];
    fill[i] = static_cast<uint8_t>(
        std::min(255.0, std::nearbyint(255.0 * m)));  // timm: round(255 * mean)
  }
  std::optional<augment::Resample> resample;
  if (filter)
    resample = *filter == Interpolation::kBicubic ? augment::Resample::kBicubic
                                                  : augment::Resample::kBilinear;
  try {
    p.add(std::make_shared<augment::RandAugment>(augment::RandAugmentConfig::parse(aa), fill, 0.45,
                                                 resample));
  } catch (const std::invalid_argument& e) {
    args["auto_augment"].fail(util::quote(aa) + ": " + util::shorten(e.what(), 200));
  }
}

void add_color_jitter(Pipeline& p, const config::Args& args) {
  if (!args["color_jitter"].is_array()) {
    // timm: a single color_jitter value jitters brightness, contrast and saturation alike.
    const double cj = args.get<double>("color_jitter", 0.4, config::Range::at_least(0));
    if (cj > 0) p.add(std::make_shared<augment::ColorJitter>(cj, cj, cj, 0.0));
    return;
  }
  // timm: 3 or 4 values are brightness, contrast, saturation (and hue) as given.
  const config::Args v = args["color_jitter"];
  auto cj = v.as<std::vector<double>>(config::Range::at_least(0));
  if (cj.size() != 3 && cj.size() != 4) v.fail_expected("a number or 3-4 numbers");
  try {
    p.add(
        std::make_shared<augment::ColorJitter>(cj[0], cj[1], cj[2], cj.size() == 4 ? cj[3] : 0.0));
  } catch (const std::invalid_argument& e) {
    v.fail(util::shorten(e.what(), 200));
  }
}

void add_random_erasing(Pipeline& p, const config::Args& args) {
  const double re_prob = args.get<double>("re_prob", 0.0, config::Range{0, 1});
  if (re_prob <= 0) return;
  const std::string mode = args.get<std::string>("re_mode", "const");
  if (mode != "pixel")
    args["re_mode"].fail("only 'pixel' random erasing is available, found " + util::quote(mode));
  const int count = args.get<int>("re_count", 1, config::Range{1, 1000});
  p.add(std::make_shared<augment::RandomErasing>(re_prob, 0.02, 1.0 / 3, 0.3, 1, count));
}

}  // namespace

Pipeline make_timm_transform(const config::Args& given, int64_t img_size,
                             const std::vector<float>& mean, const std::vector<float>& std,
                             bool training) {
  const config::Args args =
      given.is_null() ? config::Args(nlohmann::json::object(), given.path(), given.sources())
                      : given;
  if (!args.is_object()) args.fail_expected("a mapping of timm transform arguments");
  args.check_keys({"scale", "ratio", "hflip", "vflip", "color_jitter", "auto_augment",
                   "interpolation", "re_prob", "re_mode", "re_count", "re_num_splits", "crop_pct",
                   "mean", "std"});
  std::string interp = args.get<std::string>("interpolation", "bilinear");
  if (interp.empty()) interp = "bilinear";
  const bool random_interp = interp == "random";
  const Interpolation filter = random_interp
                                   ? Interpolation::kBilinear
                                   : parse_interpolation(interp, args["interpolation"].where());
  const config::Range probability{0, 1};
  Pipeline p;
  p.normalize(mean, std);
  if (!training) {
    const double crop_pct =
        args.get<double>("crop_pct", 0.875, config::Range{0, 1e6, /*min_excluded=*/true});
    p.add(std::make_shared<Resize>(
        static_cast<int64_t>(std::floor(static_cast<double>(img_size) / crop_pct)), filter));
    p.add(std::make_shared<CenterCrop>(img_size));
    return p;
  }
  p.add(std::make_shared<RandomResizedCrop>(img_size, range_arg(args, "scale", {0.08, 1.0}),
                                            range_arg(args, "ratio", {3.0 / 4.0, 4.0 / 3.0}),
                                            filter, random_interp));
  const double hflip = args.get<double>("hflip", 0.5, probability),
               vflip = args.get<double>("vflip", 0.0, probability);
  if (hflip > 0) p.add(std::make_shared<RandomHorizontalFlip>(hflip));
  if (vflip > 0) p.add(std::make_shared<RandomVerticalFlip>(vflip));
  const std::string aa = args.get<std::string>("auto_augment", "");
  if (!aa.empty())
    add_rand_augment(p, args, aa, mean, random_interp ? std::nullopt : std::optional(filter));
  else
    add_color_jitter(p, args);
  add_random_erasing(p, args);
  return p;
}

}  // namespace det::data
