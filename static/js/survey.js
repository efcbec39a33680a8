/* Progressive enhancement only: the questionnaire works without this file. */
(function () {
  "use strict";

  // Show the motivation rating only when "yes" is chosen for the matching company kind.
  function syncRating(ratingGroup) {
    var metName = ratingGroup.getAttribute("data-met");
    var chosen = document.querySelector('input[name="' + metName + '"]:checked');
    var show = chosen !== null && chosen.value === "yes";
    ratingGroup.hidden = !show;
    ratingGroup.querySelectorAll("input").forEach(function (input) {
      input.disabled = !show;
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
