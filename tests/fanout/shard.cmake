herald_unit_test(shard_test SOURCES shard_test.cc LIBS herald_fanout herald_tls OpenSSL::SSL OpenSSL::Crypto)
target_include_directories(shard_test PRIVATE ${PROJECT_SOURCE_DIR}/tests)
herald_unit_test(shard_tls_test SOURCES shard_tls_test.cc LIBS herald_fanout herald_tls OpenSSL::SSL OpenSSL::Crypto)
target_include_directories(shard_tls_test PRIVATE ${PROJECT_SOURCE_DIR}/tests)
