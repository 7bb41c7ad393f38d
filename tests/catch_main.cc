// The one translation unit that holds Catch2's runner (Catch2 v2, Debian's catch2).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
