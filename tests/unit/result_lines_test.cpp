// A streamed job's lines: written in input order as soon as every image before is answered, each result
// released once written, so a job of millions holds only the results between its oldest unanswered image
// and its newest answer; its inputs go to an inputs file as they are found and come back in the same order.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "imgpipe/job/input_file.hpp"
#include "imgpipe/job/results.hpp"
#include "test_support.hpp"

using namespace imgpipe;
using namespace imgpipe::test;
namespace fs = std::filesystem;

namespace {

std::vector<JobInput> numbered_inputs(std::size_t count) {
  std::vector<JobInput> inputs;
  for (std::size_t i = 0; i < count; ++i)
    inputs.push_back({input_id(i), "photo" + std::to_string(i) + ".jpg"});
  return inputs;
}

ImageResult labelled(std::size_t index, const std::string& label) {
  return {input_id(index), label, 0.5, ""};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("input ids are the input's index, zero-padded to six digits", "[unit][results]") {
  CHECK(input_id(0) == "000000");
  CHECK(input_id(42) == "000042");
  CHECK(input_id(999999) == "999999");
  CHECK(input_id(1000000) == "1000000");
}

TEST_CASE("indexed results take each input's first answer and nothing else", "[unit][results]") {
  JobResults results = JobResults::indexed(3);
  CHECK(results.add(labelled(1, "Bag"), "v1"));
  CHECK_FALSE(results.add(labelled(1, "Coat"), "v1"));  // a redelivery
  CHECK(results.duplicates() == 1);
  for (const std::string id : {"1", "000003", "00000a", "", "0000001"})
    CHECK_FALSE(results.add({id, "Bag", 0.5, ""}, "v1"));
  CHECK(results.unknown() == 5);
  CHECK(results.done() == 1);
  CHECK(results.answered("000001"));
  CHECK_FALSE(results.answered("000000"));
  CHECK(results.find("000001")->label == "Bag");
  results.release("000001");
  CHECK(results.find("000001") == nullptr);
  CHECK(results.answered("000001"));  // still answered: a late copy is a duplicate, not a new result
  CHECK_FALSE(results.add(labelled(1, "Bag"), "v1"));
  CHECK(results.held() == 0);
}

TEST_CASE("lines go out in input order as soon as every earlier image is answered", "[unit][results]") {
  const auto inputs = numbered_inputs(5);
  JobResults results = JobResults::indexed(inputs.size());
  std::ostringstream out;
  std::vector<std::string> seen;
  ResultLineWriter writer(out, OutputFormat::csv, "fashion", std::make_unique<VectorInputSource>(inputs),
                          [&](const JobInput& input, const ImageResult* result) {
                            seen.push_back(input.path.string() + "=" + (result ? result->label : "-"));
                          });
  CHECK(out.str() == "image,label,score,model,error\n");

  results.add(labelled(1, "Bag"), "v1");
  results.add(labelled(2, "Coat"), "v1");
  writer.write_ready(results);
  CHECK(writer.written() == 0);  // image 0 is still out: nothing may be written after it
  CHECK(results.held() == 2);

  results.add(labelled(0, "Shirt"), "v1");
  writer.write_ready(results);
  CHECK(writer.written() == 3);
  CHECK(results.held() == 0);  // written lines hold nothing

  results.add({input_id(4), "", 0.0, "cannot decode image"}, "");
  writer.write_ready(results);
  CHECK(writer.written() == 3);
  CHECK(results.held() == 1);

  writer.finish(results);  // image 3 never came back
  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 6);
  CHECK(lines[1] == "photo0.jpg,Shirt,0.5,fashion@v1,");
  CHECK(lines[2] == "photo1.jpg,Bag,0.5,fashion@v1,");
  CHECK(lines[3] == "photo2.jpg,Coat,0.5,fashion@v1,");
  CHECK(lines[4] == "photo3.jpg,,,fashion,no result (the job did not finish)");
  CHECK(lines[5] == "photo4.jpg,,,fashion,cannot decode image");
  CHECK(seen == std::vector<std::string>{"photo0.jpg=Shirt", "photo1.jpg=Bag", "photo2.jpg=Coat",
                                         "photo3.jpg=-", "photo4.jpg="});
}

TEST_CASE("a cancelled job's unanswered images get its error as their line", "[unit][results]") {
  const auto inputs = numbered_inputs(4);
  JobResults results = JobResults::indexed(inputs.size());
  std::ostringstream out;
  ResultLineWriter writer(out, OutputFormat::jsonl, "fashion", std::make_unique<VectorInputSource>(inputs));
  results.add(labelled(2, "Bag"), "v1");
  CHECK(results.answer_rest("cancelled") == 3);
  CHECK(results.complete());
  CHECK(results.failed() == 3);
  CHECK_FALSE(results.add(labelled(0, "Bag"), "v1"));  // too late: the job is over
  writer.write_ready(results);
  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].find("\"error\":\"cancelled\"") != std::string::npos);
  CHECK(lines[2].find("\"label\":\"Bag\"") != std::string::npos);
  CHECK(lines[3].find("\"error\":\"cancelled\"") != std::string::npos);
}

TEST_CASE("a list's inputs go to the inputs file as found and come back in order with their ids",
          "[unit][results]") {
  TempDir dir;
  fs::create_directories(dir.path() / "walked" / "sub");
  for (const char* name : {"walked/b.jpg", "walked/sub/a.png", "walked/notes.txt", "named.jpg"})
    std::ofstream(dir.path() / name) << "x";
  {
    std::ofstream list(dir.path() / "list.txt");
    list << "# a manifest\nnamed.jpg\n\nwalked\nmissing.jpg\n";
  }
  const auto file = dir.path() / "job.inputs";
  InputFileWriter writer(file);
  std::size_t found = 0;
  const auto not_images = stream_inputs(std::vector<std::string>{"@" + (dir.path() / "list.txt").string()},
                                        nullptr, [&](JobInput&& input) {
                                          CHECK(input.image_id == input_id(found++));
                                          writer.add(input);
                                        });
  writer.close();
  CHECK(writer.count() == 4);
  REQUIRE(not_images.size() == 1);
  CHECK(not_images[0].filename() == "notes.txt");

  // The same inputs as gather_inputs holds them, in the same order and with the same ids.
  const auto gathered =
      gather_inputs(std::vector<std::string>{"@" + (dir.path() / "list.txt").string()}).images;
  InputFileReader reader(file);
  for (const auto& expected : gathered) {
    const auto input = reader.next();
    REQUIRE(input);
    CHECK(input->image_id == expected.image_id);
    CHECK(input->path == expected.path);
    CHECK(input->confined_to == expected.confined_to);
  }
  CHECK_FALSE(reader.next());
}

TEST_CASE("a damaged inputs file is named with the line, not read as other inputs", "[unit][results]") {
  TempDir dir;
  std::ofstream(dir.path() / "job.inputs") << "[\"a.jpg\"]\nnot json\n";
  InputFileReader reader(dir.path() / "job.inputs");
  CHECK(reader.next()->path == "a.jpg");
  CHECK_THROWS_WITH(reader.next(), Catch::Contains("line 2") && Catch::Contains("job.inputs"));
}

TEST_CASE("a path that is not UTF-8 comes back from the inputs file byte for byte", "[unit][results]") {
  TempDir dir;
  const fs::path latin1 = dir.path() / std::string("caf\xe9.jpg");
  const fs::path folder = dir.path() / std::string("\xe9t\xe9");
  InputFileWriter writer(dir.path() / "job.inputs");
  writer.add({input_id(0), latin1});
  writer.add({input_id(1), folder / "a.jpg", folder});
  writer.close();
  InputFileReader reader(dir.path() / "job.inputs");
  CHECK(reader.next()->path == latin1);
  const auto walked = reader.next();
  CHECK(walked->path == folder / "a.jpg");
  CHECK(walked->confined_to == folder);
}
