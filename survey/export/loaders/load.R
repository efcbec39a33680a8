# Load the survey export into R, with its labels: source("load.R") in the unzipped folder.
#
# `frames` becomes a list of data frames, one per CSV file ("responses", "answers_long",
# "paradata", "codebook", "examples" when included):
# - coded columns are factors whose levels are the labels in `lang` ("en" or "ru");
# - integer columns are integers;
# - empty and "suppressed" cells are NA (datapackage.json says, per column, what an empty
#   cell means there: x-missingValueLabels);
# - attr(frames$responses$<column>, "label") is the question text.
# Everything comes from datapackage.json, the machine-readable codebook beside this file,
# read with the jsonlite package (install.packages("jsonlite")); the CSV files with base R.

lang <- "en"  # or "ru"

package <- jsonlite::fromJSON("datapackage.json", simplifyVector = FALSE)
frames <- list()
for (resource in package$resources) {
  schema <- resource$schema
  data <- utils::read.csv(
    resource$path,
    sep = resource$dialect$delimiter,
    # the excel variant starts with a byte-order mark
    fileEncoding = if (identical(resource$encoding, "utf-8-sig")) "UTF-8-BOM" else "UTF-8",
    colClasses = "character",  # codes stay codes: types are set below
    na.strings = unlist(schema$missingValues),
    check.names = FALSE
  )
  for (field in schema$fields) {
    name <- field$name
    if (identical(field$type, "integer")) {
      data[[name]] <- as.integer(data[[name]])
    } else if (!is.null(field$categories)) {
      codes <- vapply(field$categories, function(category) category$value, "")
      labels <- unlist(field[["x-categoryLabels"]][[lang]])
      data[[name]] <- factor(data[[name]], levels = codes, labels = labels)
    }
    if (!is.null(field[["x-labels"]])) {
      attr(data[[name]], "label") <- field[["x-labels"]][[lang]]
    }
  }
  frames[[resource$name]] <- data
}
rm(package, resource, schema, data, field, name)
