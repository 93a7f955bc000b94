// Decodes each path read from stdin (one a line) with image::DecodeFile, max_side off, and writes
// OUTDIR/<line number>.rgb ("W H\n" then RGB8 rows) or OUTDIR/<line number>.err (the Status).
// Driven by tests/pillow_decode_compare.py; not a test itself.
//   build/tests/image_decode_dump OUTDIR < list.txt
#include <cstdio>
#include <iostream>
#include <string>

#include "image/image.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR < list.txt\n", argv[0]);
    return 2;
  }
  fs::image::DecodeOptions options;
  options.max_side = 0;
  int index = 0;
  for (std::string path; std::getline(std::cin, path); ++index) {
    const std::string base = std::string(argv[1]) + "/" + std::to_string(index);
    auto img = fs::image::DecodeFile(path, options);
    FILE* f = std::fopen((base + (img.ok() ? ".rgb" : ".err")).c_str(), "wb");
    if (f == nullptr) return 1;
    if (img.ok()) {
      std::fprintf(f, "%d %d\n", img->width, img->height);
      std::fwrite(img->pixels.data(), 1, img->pixels.size(), f);
    } else {
      std::fputs(img.status().ToString().c_str(), f);
    }
    std::fclose(f);
  }
  return 0;
}
