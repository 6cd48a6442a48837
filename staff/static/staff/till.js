/* The till screen: Alt+<letter> works the same in every browser (native access keys differ: Alt+Shift in
   Firefox, Ctrl+Alt on a Mac), and a step that fails on the server or the network says so (htmx leaves the
   screen unchanged). */
(function () {
    "use strict";
    function box() {
        return document.getElementById("till-status") || document.createElement("div");
    }
    function status(text) {
        box().textContent = text;
    }
    document.addEventListener("htmx:responseError", function (event) {
        var code = event.detail.xhr ? event.detail.xhr.status : "";
        status((box().dataset.serverError || "The server refused the step") + " (" + code + ").");
    });
    document.addEventListener("htmx:sendError", function () {
        status(box().dataset.networkError || "No connection to the server: try again.");
    });
    document.addEventListener("htmx:beforeRequest", function () {
        status("");
    });
    document.addEventListener("keydown", function (event) {
        if (!event.altKey || event.ctrlKey || event.metaKey || !/^Key[A-Z]$/.test(event.code)) {
            return;
        }
        var target = document.querySelector('#content-main [accesskey="' + event.code.slice(3).toLowerCase() + '"]');
        if (!target) {
            return;
        }
        event.preventDefault(); // the browser's own access key would act a second time
        if (target.tagName === "BUTTON" || target.tagName === "A") {
            target.click();
        } else {
            target.focus();
            if (typeof target.select === "function") {
                target.select(); // typing replaces what was there
            }
        }
    });
})();
