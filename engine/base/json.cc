// Boost.JSON's implementation, compiled once for the whole process (its
// header-only mode: Debian ships no libboost_json for 1.81).
#include <boost/json/src.hpp>
