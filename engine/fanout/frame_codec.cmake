# The wire formats of live frames: no Boost, no Kafka, cheap to link anywhere.
add_library(herald_frame_codec STATIC ${CMAKE_CURRENT_LIST_DIR}/frame_codec.cc)
target_link_libraries(herald_frame_codec PUBLIC herald_proto herald_base)
