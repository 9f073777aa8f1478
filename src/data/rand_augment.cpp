// timm's RandAugment ops (auto_augment.py): one table of each op's name, whether its level
// takes a random sign, whether it moves pixels (and so draws a resampling filter), its level ->
// argument rule and what it does.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

#include "det/data/augment.h"

namespace det::data::augment {
namespace {

double signed_value(double v, bool negate) { return negate ? -v : v; }

// Enhancements: timm's _enhance_level_to_arg and _enhance_increasing_level_to_arg.
double enhance(double frac, bool, double) { return frac * 1.8 + 0.1; }
double enhance_increasing(double frac, bool negate, double) {
  return std::max(0.1, 1.0 + signed_value(frac * 0.9, negate));
}
double no_arg(double, bool, double) { return 0; }

Image apply_color(const Image& im, double arg, Resample, const Color&) { return color(im, arg); }
Image apply_contrast(const Image& im, double arg, Resample, const Color&) {
  return contrast(im, arg);
}
Image apply_brightness(const Image& im, double arg, Resample, const Color&) {
  return brightness(im, arg);
}
Image apply_sharpness(const Image& im, double arg, Resample, const Color&) {
  return sharpness(im, arg);
}
Image apply_posterize(const Image& im, double arg, Resample, const Color&) {
  return posterize(im, arg);
}
Image apply_solarize(const Image& im, double arg, Resample, const Color&) {
  return solarize(im, arg);
}

struct OpSpec {
  Op op;
  const char* name;
  bool uses_sign;
  bool geometric;
  double (*level_to_arg)(double frac, bool negate, double translate_pct);
  Image (*apply)(const Image& image, double arg, Resample resample, const Color& fill);
};

// In the order of enum Op (checked by spec()).
const std::array<OpSpec, 21> kOps = {{
    {Op::kAutoContrast, "AutoContrast", false, false, no_arg,
     [](const Image& im, double, Resample, const Color&) { return auto_contrast(im); }},
    {Op::kEqualize, "Equalize", false, false, no_arg,
     [](const Image& im, double, Resample, const Color&) { return equalize(im); }},
    {Op::kInvert, "Invert", false, false, no_arg,
     [](const Image& im, double, Resample, const Color&) { return invert(im); }},
    {Op::kRotate, "Rotate", true, true,
     [](double frac, bool negate, double) { return signed_value(frac * 30.0, negate); }, rotate},
    {Op::kPosterize, "Posterize", false, false,
     [](double frac, bool, double) { return static_cast<double>(static_cast<int>(frac * 4)); },
     apply_posterize},
    {Op::kPosterizeIncreasing, "PosterizeIncreasing", false, false,
     [](double frac, bool, double) { return static_cast<double>(4 - static_cast<int>(frac * 4)); },
     apply_posterize},
    {Op::kSolarize, "Solarize", false, false,
     [](double frac, bool, double) { return static_cast<double>(static_cast<int>(frac * 256)); },
     apply_solarize},
    {Op::kSolarizeIncreasing, "SolarizeIncreasing", false, false,
     [](double frac, bool, double) {
       return static_cast<double>(256 - static_cast<int>(frac * 256));
     },
     apply_solarize},
    {Op::kSolarizeAdd, "SolarizeAdd", false, false,
     [](double frac, bool, double) { return static_cast<double>(static_cast<int>(frac * 110)); },
     [](const Image& im, double arg, Resample, const Color&) { return solarize_add(im, arg); }},
    {Op::kColor, "Color", false, false, enhance, apply_color},
    {Op::kColorIncreasing, "ColorIncreasing", true, false, enhance_increasing, apply_color},
    {Op::kContrast, "Contrast", false, false, enhance, apply_contrast},
    {Op::kContrastIncreasing, "ContrastIncreasing", true, false, enhance_increasing,
     apply_contrast},
    {Op::kBrightness, "Brightness", false, false, enhance, apply_brightness},
    {Op::kBrightnessIncreasing, "BrightnessIncreasing", true, false, enhance_increasing,
     apply_brightness},
    {Op::kSharpness, "Sharpness", false, false, enhance, apply_sharpness},
    {Op::kSharpnessIncreasing, "SharpnessIncreasing", true, false, enhance_increasing,
     apply_sharpness},
    {Op::kShearX, "ShearX", true, true,
     [](double frac, bool negate, double) { return signed_value(frac * 0.3, negate); }, shear_x},
    {Op::kShearY, "ShearY", true, true,
     [](double frac, bool negate, double) { return signed_value(frac * 0.3, negate); }, shear_y},
    {Op::kTranslateXRel, "TranslateXRel", true, true,
     [](double frac, bool negate, double pct) { return signed_value(frac * pct, negate); },
     translate_x_rel},
    {Op::kTranslateYRel, "TranslateYRel", true, true,
     [](double frac, bool negate, double pct) { return signed_value(frac * pct, negate); },
     translate_y_rel},
}};

const OpSpec& spec(Op op) {
  const auto i = static_cast<size_t>(op);
  if (i >= kOps.size() || kOps[i].op != op)
    throw std::logic_error("RandAugment's op table is out of the order of enum Op");
  return kOps[i];
}

}  // namespace

std::string op_name(Op op) { return spec(op).name; }
bool op_uses_sign(Op op) { return spec(op).uses_sign; }
bool op_is_geometric(Op op) { return spec(op).geometric; }

double level_to_arg(Op op, double m, bool negate, double translate_pct) {
  return spec(op).level_to_arg(m / 10.0, negate, translate_pct);  // timm's _LEVEL_DENOM
}

Image apply_op(Op op, const Image& image, double arg, Resample resample, const Color& fill) {
  return spec(op).apply(image, arg, resample, fill);
}

// ---- RandAugment -------------------------------------------------------------------------------

namespace {

// A section's value: a number (timm splits "key<digits...>" at the first digit).
double section_value(const std::string& section, const std::string& value) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size())
    throw std::invalid_argument("section '" + section + "' has a malformed value '" + value + "'");
  return v;
}

int section_integer(const std::string& section, double v) {
  if (v != std::floor(v)) throw std::invalid_argument("section '" + section + "' needs an integer");
  return static_cast<int>(v);
}

void set_section(RandAugmentConfig& c, const std::string& key, const std::string& section,
                 double v) {
  if (key == "m") {
    c.magnitude = section_integer(section, v);
  } else if (key == "n") {
    c.num_layers = section_integer(section, v);
  } else if (key == "mstd") {
    c.magnitude_std = v > 100 ? std::numeric_limits<double>::infinity() : v;
  } else if (key == "mmax") {
    c.magnitude_max = section_integer(section, v);
  } else if (key == "inc") {
    // timm tests bool(val) on the string, so even "inc0" selects the increasing ops; we follow
    // the documented meaning (an integer flag) instead.
    c.increasing = section_integer(section, v) != 0;
  } else if (key == "p") {
    c.prob = v;
  } else if (key == "w") {
    c.weight_index = section_integer(section, v);
    if (c.weight_index != 0)
      throw std::invalid_argument("only weight set w0 exists, found '" + section + "'");
  } else {
    throw std::invalid_argument("unknown section '" + section +
                                "' (known: m, n, mstd, mmax, inc, p, w)");
  }
}

}  // namespace

RandAugmentConfig RandAugmentConfig::parse(const std::string& config) {
  RandAugmentConfig c;
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dash = config.find('-', start);
    parts.push_back(
        config.substr(start, dash == std::string::npos ? std::string::npos : dash - start));
    if (dash == std::string::npos) break;
    start = dash + 1;
  }
  if (parts[0] != "rand")
    throw std::invalid_argument("must start with 'rand', found '" + parts[0] + "'");
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& s = parts[i];
    const size_t d = s.find_first_of("0123456789");
    if (d == std::string::npos) continue;  // timm ignores sections without a digit
    set_section(c, s.substr(0, d), s, section_value(s, s.substr(d)));
  }
  if (c.num_layers < 0) throw std::invalid_argument("n must be >= 0");
  if (c.prob < 0 || c.prob > 1) throw std::invalid_argument("p must be in [0, 1]");
  return c;
}

RandAugment::RandAugment(RandAugmentConfig config, Color fill, double translate_pct,
                         std::optional<Resample> resample)
    : config_(config), fill_(fill), translate_pct_(translate_pct), resample_(resample) {
  if (config_.increasing)
    ops_ = {Op::kAutoContrast,
            Op::kEqualize,
            Op::kInvert,
            Op::kRotate,
            Op::kPosterizeIncreasing,
            Op::kSolarizeIncreasing,
            Op::kSolarizeAdd,
            Op::kColorIncreasing,
            Op::kContrastIncreasing,
            Op::kBrightnessIncreasing,
            Op::kSharpnessIncreasing,
            Op::kShearX,
            Op::kShearY,
            Op::kTranslateXRel,
            Op::kTranslateYRel};
  else
    ops_ = {Op::kAutoContrast, Op::kEqualize,      Op::kInvert,       Op::kRotate,
            Op::kPosterize,    Op::kSolarize,      Op::kSolarizeAdd,  Op::kColor,
            Op::kContrast,     Op::kBrightness,    Op::kSharpness,    Op::kShearX,
            Op::kShearY,       Op::kTranslateXRel, Op::kTranslateYRel};
  if (config_.weight_index == 0) {
    // timm's _RAND_CHOICE_WEIGHTS_0, in _RAND_TRANSFORMS order (timm uses it for inc too).
    weights_ = {0.025, 0.005, 0,     0.3, 0,   0.005, 0.005, 0.025,
                0.005, 0.005, 0.025, 0.2, 0.2, 0.1,   0.1};
    const auto nonzero =
        std::count_if(weights_.begin(), weights_.end(), [](double w) { return w > 0; });
    if (config_.num_layers > nonzero)
      throw std::invalid_argument("n" + std::to_string(config_.num_layers) + " exceeds the " +
                                  std::to_string(nonzero) +
                                  " ops that weights w0 can choose without replacement");
  }
}

void RandAugment::apply(Image& image, SampleRng& rng) const {
  std::vector<size_t> chosen;
  if (weights_.empty()) {
    for (int i = 0; i < config_.num_layers; ++i)
      chosen.push_back(static_cast<size_t>(rng.randint(0, static_cast<int64_t>(ops_.size()) - 1)));
  } else {
    // np.random.choice(replace=False, p=w): draw proportionally among the ops not yet drawn.
    std::vector<double> w = weights_;
    for (int i = 0; i < config_.num_layers; ++i) {
      const double total = std::accumulate(w.begin(), w.end(), 0.0);
      double u = rng.uniform() * total;
      size_t k = 0;
      for (; k + 1 < w.size(); ++k) {
        if (w[k] > 0 && u < w[k]) break;
        u -= w[k];
      }
      while (w[k] <= 0) --k;  // rounding at the end of the cumulative sum
      chosen.push_back(k);
      w[k] = 0;
    }
  }
  for (size_t k : chosen) {
    const Op op = ops_[k];
    // timm AugmentOp.__call__: prob test, magnitude noise and clip, level -> arg (random sign),
    // then the random resampling filter.
    if (config_.prob < 1.0 && rng.uniform() > config_.prob) continue;
    double m = config_.magnitude;
    if (config_.magnitude_std > 0) {
      if (std::isinf(config_.magnitude_std))
        m = rng.uniform(0, m);
      else
        m = std::normal_distribution<double>(m, config_.magnitude_std)(rng.engine());
    }
    m = std::max(0.0, std::min(m, config_.magnitude_max));
    const bool negate = op_uses_sign(op) && rng.uniform() > 0.5;
    const double arg = level_to_arg(op, m, negate, translate_pct_);
    Resample resample = Resample::kBilinear;
    if (op_is_geometric(op))
      resample =
          resample_ ? *resample_ : (rng.bernoulli(0.5) ? Resample::kBicubic : Resample::kBilinear);
    image = apply_op(op, image, arg, resample, fill_);
  }
}

}  // namespace det::data::augment
