#include "cli/schema_objects.h"

#include <gtest/gtest.h>

namespace pgbranch::cli {
namespace {

// The shape of `pg_dump --schema-only --no-owner --no-privileges` output.
std::string Dump(const std::string& customers, const std::string& extra = "") {
  return "--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n\n"
         "--\n-- Name: customers; Type: TABLE; Schema: public; Owner: -\n--\n\n"
         "CREATE TABLE public.customers (\n" +
         customers +
         ");\n\n\n"
         "--\n-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: -\n--\n\n"
         "ALTER TABLE ONLY public.customers\n    ADD CONSTRAINT customers_pkey PRIMARY KEY "
         "(id);\n\n\n" +
         extra + "--\n-- PostgreSQL database dump complete\n--\n\n";
}

const std::string kIndex =
    "--\n-- Name: customers_email_idx; Type: INDEX; Schema: public; Owner: -\n--\n\n"
    "CREATE INDEX customers_email_idx ON public.customers USING btree (email);\n\n\n";

TEST(SchemaObjects, ParsesObjectsWithTheirNames) {
  auto objects = ParseSchemaDump(Dump("    id integer NOT NULL,\n    email text\n", kIndex));
  ASSERT_EQ(objects.size(), 3u);
  EXPECT_EQ(objects[0].Label(), "TABLE public.customers");
  EXPECT_EQ(objects[0].sql,
            "CREATE TABLE public.customers (\n    id integer NOT NULL,\n    email text\n);\n");
  EXPECT_EQ(objects[1].Label(), "CONSTRAINT customers_pkey ON public.customers");
  EXPECT_EQ(objects[2].Label(), "INDEX public.customers_email_idx");
  EXPECT_EQ(objects[2].sql,
            "CREATE INDEX customers_email_idx ON public.customers USING btree (email);\n");
}

TEST(SchemaObjects, TwoWayNamesAddedDroppedAndChanged) {
  auto parent = ParseSchemaDump(Dump("    id integer NOT NULL,\n    email text\n", kIndex));
  auto branch = ParseSchemaDump(Dump("    id integer NOT NULL,\n    email text,\n    tier text\n"));
  auto changes = TwoWaySchemaDiff(parent, branch);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].label, "TABLE public.customers");
  EXPECT_EQ(changes[0].change, "changed");
  EXPECT_EQ(changes[1].label, "INDEX public.customers_email_idx");
  EXPECT_EQ(changes[1].change, "dropped");
  EXPECT_TRUE(TwoWaySchemaDiff(parent, parent).empty());
}

TEST(SchemaObjects, ThreeWaySeparatesDriftFromTheBranchsChanges) {
  auto base = ParseSchemaDump(Dump("    id integer NOT NULL,\n    email text\n"));
  // The branch added an index; the parent added a column since (drift).
  auto ours = ParseSchemaDump(Dump("    id integer NOT NULL,\n    email text\n", kIndex));
  auto theirs =
      ParseSchemaDump(Dump("    id integer NOT NULL,\n    email text,\n    ok boolean\n"));
  auto changes = ThreeWaySchemaDiff(base, ours, theirs);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].label, "TABLE public.customers");
  EXPECT_EQ(changes[0].side, ChangeSide::kParent);  // not "the branch dropped column ok"
  EXPECT_EQ(changes[0].change, "changed");
  EXPECT_EQ(changes[1].label, "INDEX public.customers_email_idx");
  EXPECT_EQ(changes[1].side, ChangeSide::kBranch);
  EXPECT_EQ(changes[1].change, "added");
  for (const auto& c : changes) EXPECT_FALSE(c.conflict);
}

TEST(SchemaObjects, ThreeWayConflictsOnlyWhenTheSameColumnDiffers) {
  auto base = ParseSchemaDump(Dump("    id integer NOT NULL\n"));
  auto ours = ParseSchemaDump(Dump("    id integer NOT NULL,\n    a text\n"));
  auto other_column = ParseSchemaDump(Dump("    id integer NOT NULL,\n    b text\n"));
  auto same_column = ParseSchemaDump(Dump("    id integer NOT NULL,\n    a integer\n"));
  auto compatible = ThreeWaySchemaDiff(base, ours, other_column);
  ASSERT_EQ(compatible.size(), 1u);
  EXPECT_EQ(compatible[0].side, ChangeSide::kBoth);
  EXPECT_FALSE(compatible[0].conflict);
  auto conflict = ThreeWaySchemaDiff(base, ours, same_column);
  ASSERT_EQ(conflict.size(), 1u);
  EXPECT_TRUE(conflict[0].conflict);
  // The same change on both sides is not a conflict.
  auto same = ThreeWaySchemaDiff(base, ours, ours);
  ASSERT_EQ(same.size(), 1u);
  EXPECT_FALSE(same[0].conflict);
}

TEST(SchemaObjects, LineDiffShowsAnAddedColumnAsOneLine) {
  EXPECT_EQ(LineDiff("CREATE TABLE t (\n    a text\n);\n",
                     "CREATE TABLE t (\n    a text,\n    b text\n);\n"),
            "  CREATE TABLE t (\n      a text,\n+     b text\n  );\n");
  EXPECT_EQ(LineDiff("x\n", "y\n"), "- x\n+ y\n");
}

}  // namespace
}  // namespace pgbranch::cli
