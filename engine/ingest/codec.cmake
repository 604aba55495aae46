# Decoding and validation of announcement records: no Kafka, no Boost.
add_library(herald_ingest_codec STATIC ${CMAKE_CURRENT_LIST_DIR}/decoder.cc)
target_link_libraries(herald_ingest_codec PUBLIC herald_base herald_proto)
