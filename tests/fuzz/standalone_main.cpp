// Runs a fuzz target's LLVMFuzzerTestOneInput over every file under the paths given (files or
// directories, recursively, in sorted order), so the normal build runs each target over its
// corpus as a regression test without libFuzzer. A crash, a sanitizer report or an uncaught
// exception fails the test; an empty corpus fails it too, so a test cannot pass by running
// nothing.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path p = argv[i];
    if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file()) inputs.push_back(e.path());
    } else if (fs::is_regular_file(p)) {
      inputs.push_back(p);
    } else {
      std::fprintf(stderr, "%s: no such file or directory\n", p.c_str());
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...: no input found\n", argv[0]);
    return 2;
  }
  for (const auto& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "%s (%zu bytes)\n", p.c_str(), bytes.size());
    // A copy of exactly the input's size, as libFuzzer passes it, so reading past it is caught.
    std::vector<uint8_t> data(bytes.begin(), bytes.end());
    const int rc = LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
    if (rc != 0) {
      std::fprintf(stderr, "%s: LLVMFuzzerTestOneInput returned %d\n", p.c_str(), rc);
      return 1;
    }
  }
  std::fprintf(stderr, "%zu inputs ran without a fault\n", inputs.size());
  return 0;
}
