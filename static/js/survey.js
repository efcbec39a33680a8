/* Progressive enhancement only: the questionnaire works without this file. */
(function () {
  "use strict";

  // Hide a group and disable its inputs (a disabled input is not sent), or show it again.
  function reveal(group, show) {
    group.hidden = !show;
    group.querySelectorAll("input, select, textarea").forEach(function (input) {
      input.disabled = !show;
    });
  }

  // Show the motivation rating only when "applied" ("yes, and it applied to me") is chosen
  // for the matching company kind.
  function syncRating(ratingGroup) {
    var metName = ratingGroup.getAttribute("data-met");
    var chosen = document.querySelector('input[name="' + metName + '"]:checked');
    reveal(ratingGroup, chosen !== null && chosen.value === "applied");
  }

  // Work background: show each kind of company's block only when the kinds chosen in
  // "worked_in" include it (without this script both blocks show, with a hint).
  var kindBlocks = document.querySelectorAll("fieldset.kind-block[data-worked-in]");
  function syncKindBlocks() {
    var chosen = document.querySelector('input[name="worked_in"]:checked');
    kindBlocks.forEach(function (block) {
      var codes = block.getAttribute("data-worked-in").split(" ");
      reveal(block, chosen !== null && codes.indexOf(chosen.value) !== -1);
    });
  }
  if (kindBlocks.length) {
    document.querySelectorAll(".kind-block-hint").forEach(function (hint) { hint.hidden = true; });
    syncKindBlocks();
    document.querySelectorAll('input[name="worked_in"]').forEach(function (input) {
      input.addEventListener("change", syncKindBlocks);
    });
  }

  var groups = document.querySelectorAll("fieldset.rating[data-met]");
  groups.forEach(function (group) {
    var hint = group.querySelector(".hint");
    if (hint) { hint.hidden = true; }
    syncRating(group);
    var metName = group.getAttribute("data-met");
    document.querySelectorAll('input[name="' + metName + '"]').forEach(function (input) {
      input.addEventListener("change", function () { syncRating(group); });
    });
  });

  // Move focus to the error summary so keyboard and screen-reader users hear the errors first.
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
    summary.querySelectorAll("a[href^='#']").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var target = document.getElementById(link.getAttribute("href").slice(1));
        if (target) {
          event.preventDefault();
          target.focus();
          target.scrollIntoView({block: "center"});
        }
      });
    });
  }

  // Select the whole resume link on focus, for copying.
  document.querySelectorAll("input.resume-link").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });

  // Prevent a double click from sending a form twice (the server stores one response anyway).
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function () {
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });
})();
