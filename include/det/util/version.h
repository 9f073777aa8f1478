#pragma once
/// \file
/// The det version: project(VERSION) in CMakeLists.txt, the one place it is written. det-run
/// --version prints it and every checkpoint records it (det_version in metadata.json).

namespace det::util {

/// "MAJOR.MINOR.PATCH" of this det.
const char* version();

}  // namespace det::util
