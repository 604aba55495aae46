# Client-frame parsing: pure logic, fuzzable, no Boost.
add_library(herald_ws_parser STATIC ${CMAKE_CURRENT_LIST_DIR}/ws_frame_parser.cc)
target_link_libraries(herald_ws_parser PUBLIC herald_base)
