# Included by the top level when LAGOON_FUZZ is ON (a clang build directory of its own: scripts/fuzz).
set(LAGOON_FUZZ_TARGETS http_request sse chat_request bearer_key config endpoint_request)
set(LAGOON_FUZZ_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1)
add_library(lagoon_fuzz_units STATIC EXCLUDE_FROM_ALL
  ${CMAKE_SOURCE_DIR}/src/chat/request.cpp
  ${CMAKE_SOURCE_DIR}/src/chat/sse.cpp
  ${CMAKE_SOURCE_DIR}/src/chat/usage_scan.cpp
  ${CMAKE_SOURCE_DIR}/src/upstream/retry_after.cpp
  ${CMAKE_SOURCE_DIR}/src/config/config.cpp
  ${CMAKE_SOURCE_DIR}/src/config/url.cpp
  ${CMAKE_SOURCE_DIR}/src/keys/api_key.cpp
  ${CMAKE_SOURCE_DIR}/src/http/routes.cpp
  ${CMAKE_SOURCE_DIR}/src/http/errors.cpp
  ${CMAKE_SOURCE_DIR}/src/http/request_id.cpp
  ${CMAKE_SOURCE_DIR}/src/relay/endpoints.cpp
  ${CMAKE_SOURCE_DIR}/src/relay/multipart.cpp
  ${CMAKE_SOURCE_DIR}/src/accounting/tokens.cpp
  ${CMAKE_SOURCE_DIR}/src/usage/record.cpp
  ${CMAKE_SOURCE_DIR}/src/money/money.cpp)
target_include_directories(lagoon_fuzz_units PUBLIC ${CMAKE_SOURCE_DIR}/include)
target_compile_options(lagoon_fuzz_units PUBLIC ${LAGOON_FUZZ_FLAGS} -fsanitize=fuzzer-no-link)
target_link_options(lagoon_fuzz_units PUBLIC -fsanitize=address,undefined)
target_link_libraries(lagoon_fuzz_units PUBLIC Boost::headers Boost::url OpenSSL::Crypto nlohmann_json::nlohmann_json)
foreach(name IN LISTS LAGOON_FUZZ_TARGETS)
  add_executable(fuzz_${name} EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/${name}_fuzz.cpp)
  target_link_libraries(fuzz_${name} PRIVATE lagoon_fuzz_units)
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
endforeach()
