// The JPEG/PNG codec under ImageFolder (src/data/image_codec.h): headers read without decoding,
// windows, the pixel limit's boundary and damaged files. The references (*.rgb) are PIL's
// Image.open(f).convert("RGB") bytes (tests/testdata/images).
#include "data/image_codec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::data {
namespace {
namespace fs = std::filesystem;

const fs::path kCodecImages = fs::path(DET_TEST_DATA_DIR) / "images";

std::string bytes_of(const std::string& file) { return util::read_file(kCodecImages / file); }

std::string data_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

// PIL's pixels of `file` in the window, zero outside the image.
std::string reference_window(const std::string& file, int64_t width, int64_t height,
                             const Window& w) {
  const std::string rgb = bytes_of(file + ".rgb");
  std::string out(static_cast<size_t>(w.height * w.width * 3), '\0');
  for (int64_t y = 0; y < w.height; ++y)
    for (int64_t x = 0; x < w.width; ++x) {
      const int64_t sy = w.top + y, sx = w.left + x;
      if (sy < 0 || sx < 0 || sy >= height || sx >= width) continue;
      for (int64_t c = 0; c < 3; ++c)
        out[static_cast<size_t>((y * w.width + x) * 3 + c)] =
            rgb[static_cast<size_t>((sy * width + sx) * 3 + c)];
    }
  return out;
}

std::string pixels_of(const Image& img) {
  return std::string(img.pixels.begin(), img.pixels.end());
}

TEST(ImageCodec, HeadersGiveTheSizeWithoutDecoding) {
  struct Case {
    const char* file;
    bool jpeg;
    int64_t height, width;
  };
  for (const Case& c : {Case{"rgb420.jpg", true, 23, 37}, Case{"gray.jpg", true, 23, 37},
                        Case{"big420.jpg", true, 150, 200}, Case{"rgb.png", false, 23, 37},
                        Case{"palette.png", false, 23, 37}}) {
    const std::string bytes = bytes_of(c.file);
    EXPECT_EQ(is_jpeg(bytes), c.jpeg) << c.file;
    EXPECT_EQ(is_png(bytes), !c.jpeg) << c.file;
    const auto info = peek_image_info(bytes);
    ASSERT_TRUE(info.has_value()) << c.file;
    EXPECT_EQ(info->jpeg, c.jpeg) << c.file;
    EXPECT_EQ(info->height, c.height) << c.file;
    EXPECT_EQ(info->width, c.width) << c.file;
  }
  EXPECT_FALSE(peek_image_info("").has_value());
  EXPECT_FALSE(peek_image_info("GIF89a....").has_value());
  EXPECT_FALSE(peek_image_info(bytes_of("rgb.png").substr(0, 20)).has_value());  // IHDR cut
}

TEST(ImageCodec, PngsDecodeToPilsRgb) {
  for (const char* file : {"rgb.png", "rgba.png", "gray.png", "palette.png"}) {
    const Image img = decode_png(bytes_of(file), file, 0);
    EXPECT_EQ(img.height, 23) << file;
    EXPECT_EQ(img.width, 37) << file;
    EXPECT_EQ(img.channels, 3) << file;
    EXPECT_EQ(pixels_of(img), bytes_of(std::string(file) + ".rgb")) << file;
  }
}

TEST(ImageCodec, AJpegWindowIsChosenOnceFromTheHeaderSize) {
  int calls = 0;
  const Window inside{5, 7, 10, 20};
  const std::function<Window(int64_t, int64_t)> choose = [&](int64_t h, int64_t w) {
    ++calls;
    EXPECT_EQ(h, 150);
    EXPECT_EQ(w, 200);
    return inside;
  };
  const Image img = decode_jpeg(bytes_of("big420.jpg"), "big420.jpg", 0, &choose);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(img.height, 10);
  EXPECT_EQ(img.width, 20);
  EXPECT_EQ(pixels_of(img), reference_window("big420.jpg", 200, 150, inside));
}

TEST(ImageCodec, AJpegWindowReachingOutsideIsZeroPadded) {
  for (const Window w : {Window{-3, 30, 8, 12}, Window{20, -4, 6, 50}, Window{-1, -1, 25, 39}}) {
    const std::function<Window(int64_t, int64_t)> choose = [w](int64_t, int64_t) { return w; };
    const Image img = decode_jpeg(bytes_of("rgb444.jpg"), "rgb444.jpg", 0, &choose);
    ASSERT_EQ(img.height, w.height);
    ASSERT_EQ(img.width, w.width);
    EXPECT_EQ(pixels_of(img), reference_window("rgb444.jpg", 37, 23, w))
        << w.top << "," << w.left << " " << w.height << "x" << w.width;
  }
}

TEST(ImageCodec, ThePixelLimitRefusesOnlyOverTwiceIt) {
  EXPECT_EQ(data_error([] { check_image_pixels(10, 20, "at.png", 100, false); }), "(no error)");
  EXPECT_EQ(data_error([] { check_image_pixels(3, 67, "over.png", 100, false); }),
            "over.png: image of 67x3 (201 pixels) exceeds the limit of 200 pixels (twice "
            "max_image_pixels, as PIL's decompression-bomb check); it was not decoded. Shrink the "
            "image, or raise DET_MAX_IMAGE_PIXELS (0: no limit) if it is genuine");
  EXPECT_EQ(data_error([] { check_image_pixels(int64_t{1} << 31, int64_t{1} << 31, "x", 0); }),
            "(no error)");
  // 23 x 37 = 851 pixels: refused under a limit of 425 before anything is decoded.
  EXPECT_EQ(data_error([] {
              decode_png(bytes_of("rgb.png"), "rgb.png", 425);
            }).rfind("rgb.png: image of 37x23 (851 pixels) exceeds the limit of 850 pixels", 0),
            0u);
  EXPECT_EQ(data_error([] {
              decode_jpeg(bytes_of("gray.jpg"), "gray.jpg", 425, nullptr);
            }).rfind("gray.jpg: image of 37x23 (851 pixels) exceeds the limit of 850 pixels", 0),
            0u);
}

TEST(ImageCodec, TruncatedAndUnknownFilesAreDataErrorsNamingTheFile) {
  const std::string jpg = bytes_of("big420.jpg");
  EXPECT_EQ(data_error([&] { decode_jpeg(jpg.substr(0, jpg.size() / 2), "cut.jpg", 0, nullptr); }),
            "cut.jpg: cannot decode JPEG: premature end of data (the file is truncated)");
  const std::string head_only =
      data_error([&] { decode_jpeg(jpg.substr(0, 4), "head.jpg", 0, nullptr); });
  EXPECT_EQ(head_only.rfind("head.jpg: cannot decode JPEG: ", 0), 0u) << head_only;
  const std::string png = bytes_of("rgb.png");
  const std::string cut_png =
      data_error([&] { decode_png(png.substr(0, png.size() - 30), "cut.png", 0); });
  EXPECT_EQ(cut_png.rfind("cut.png: cannot decode PNG: ", 0), 0u) << cut_png;
  EXPECT_EQ(data_error([] { decode_image("", "empty.jpg", 0); }), "empty.jpg: empty file");
  EXPECT_EQ(data_error([] { decode_image("GIF89a", "anim.gif", 0); }),
            "anim.gif: not a JPEG or PNG image (unknown signature)");
}

}  // namespace
}  // namespace det::data
