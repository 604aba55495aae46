# Writes a C++ header holding a text file as a string_view, at build time:
#   cmake -DINPUT=file -DOUTPUT=header -DNAME=identifier -DNAMESPACE=ns -P embed_text.cmake
# Used for clients/js/herald.js, which heraldd serves at /herald.js: the bytes
# served are the ones in the source tree, and nothing generated is committed.
file(READ "${INPUT}" content)
string(FIND "${content}" ")EMBED\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )EMBED\"")
endif()
file(WRITE "${OUTPUT}"
  "// Generated from ${INPUT} by embed_text.cmake: do not edit.\n"
  "#pragma once\n\n#include <string_view>\n\nnamespace ${NAMESPACE} {\n\n"
  "inline constexpr std::string_view ${NAME} = R\"EMBED(${content})EMBED\";\n\n}  // namespace ${NAMESPACE}\n")
