// What lagoon-mock-upstream reads and writes outside JSON: base64, WAV headers, multipart uploads.
#include <gtest/gtest.h>

#include "lagoon/mock/media.hpp"

namespace mock = lagoon::mock;

TEST(MockMedia, Base64FollowsRfc4648AndRejectsJunk) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(mock::base64_encode(plain), encoded);
    EXPECT_EQ(mock::base64_decode(encoded), plain);
  }
  EXPECT_EQ(mock::base64_decode("Zm9vYg"), "foob");  // padding optional
  EXPECT_EQ(mock::base64_decode("Zm9v\r\nYmFy"), "foobar");
  EXPECT_FALSE(mock::base64_decode("Zm9v!"));
  EXPECT_FALSE(mock::base64_decode("Zm9vY"));   // a lone trailing sextet
  EXPECT_FALSE(mock::base64_decode("Zg==Zg"));  // data after padding
  const std::string binary("\0\xff\x10\x80", 4);
  EXPECT_EQ(mock::base64_decode(mock::base64_encode(binary)), binary);
}

TEST(MockMedia, WavSecondsComeFromTheRiffHeader) {
  EXPECT_DOUBLE_EQ(*mock::wav_seconds(mock::pcm_wav(16000, 1, 16, 40000)), 2.5);
  EXPECT_DOUBLE_EQ(*mock::wav_seconds(mock::pcm_wav(44100, 2, 24, 44100)), 1.0);
  EXPECT_DOUBLE_EQ(*mock::wav_seconds(mock::pcm_wav(8000, 1, 8, 0)), 0.0);
  // A truncated upload is as long as what arrived.
  std::string wav = mock::pcm_wav(8000, 1, 16, 8000);
  EXPECT_DOUBLE_EQ(*mock::wav_seconds(wav.substr(0, 44 + 8000)), 0.5);
  // Chunks before "data" (LIST, fact …) are skipped, with their padding byte.
  std::string listed = wav.substr(0, 36) + std::string("LIST\x03\0\0\0abc\0", 12) + wav.substr(36);
  EXPECT_DOUBLE_EQ(*mock::wav_seconds(listed), 1.0);
  EXPECT_FALSE(mock::wav_seconds("ID3\x03 an mp3"));
  EXPECT_FALSE(mock::wav_seconds(""));
  EXPECT_FALSE(mock::wav_seconds(wav.substr(0, 30)));
  std::string mp3_in_wav = wav;
  mp3_in_wav[20] = 0x55;  // WAVE_FORMAT_MPEGLAYER3: its size does not say its length
  EXPECT_FALSE(mock::wav_seconds(mp3_in_wav));
}

TEST(MockMedia, MultipartPartsViewTheirBytes) {
  const std::string file("RIFF\r\n--not-the-boundary\0\xff", 26);
  const std::string body =
      "preamble\r\n--XyZ\r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"a;b.wav\"\r\n"
      "Content-Type: audio/wav\r\n\r\n" +
      file +
      "\r\n"
      "--XyZ\r\n"
      "content-disposition: form-data; name=model\r\n\r\n"
      "whisper\r\n"
      "--XyZ--\r\n";
  auto parts = mock::parse_multipart("multipart/form-data; boundary=\"XyZ\"", body);
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "file");
  EXPECT_EQ((*parts)[0].filename, "a;b.wav");
  EXPECT_EQ((*parts)[0].content_type, "audio/wav");
  EXPECT_EQ((*parts)[0].data, file);
  const mock::Part* model = mock::find_part(*parts, "model");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->data, "whisper");
  EXPECT_EQ(model->filename, "");
  EXPECT_EQ(mock::find_part(*parts, "language"), nullptr);

  EXPECT_FALSE(mock::parse_multipart("application/json", body));
  EXPECT_FALSE(mock::parse_multipart("multipart/form-data", body));  // no boundary
  EXPECT_FALSE(mock::parse_multipart("multipart/form-data; boundary=XyZ", body.substr(0, body.size() - 12)));
  auto empty = mock::parse_multipart("Multipart/Form-Data;boundary=b", "--b--\r\n");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(MockMedia, ContentTypesOfFormats) {
  EXPECT_EQ(mock::audio_content_type("mp3"), "audio/mpeg");
  EXPECT_EQ(mock::audio_content_type("opus"), "audio/opus");
  EXPECT_EQ(mock::audio_content_type("aac"), "audio/aac");
  EXPECT_EQ(mock::audio_content_type("flac"), "audio/flac");
  EXPECT_EQ(mock::audio_content_type("wav"), "audio/wav");
  EXPECT_EQ(mock::audio_content_type("pcm"), "audio/pcm");
  EXPECT_EQ(mock::audio_content_type("ogg"), "");
  EXPECT_EQ(mock::image_content_type("png"), "image/png");
  EXPECT_EQ(mock::image_content_type("jpg"), "image/jpeg");
  EXPECT_EQ(mock::image_content_type("webp"), "image/webp");
  EXPECT_EQ(mock::image_content_type("gif"), "");
}
