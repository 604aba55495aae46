herald_unit_test(shard_test SOURCES shard_test.cc LIBS herald_fanout)
target_include_directories(shard_test PRIVATE ${PROJECT_SOURCE_DIR}/tests)
