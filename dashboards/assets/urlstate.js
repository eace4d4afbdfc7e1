/* The page's state in the address bar: each page's clientside callback calls
 * window.shelfwiseUrl.sync(path, names, values) with its controls' values.
 *
 * - A change the user made (a click or a key since the last write) adds a history entry; changes
 *   that follow by themselves (the run a new model brings, a page opened from a link) replace the
 *   current entry, so Back undoes one user action at a time. Writes wait 250 ms for the
 *   controls to settle.
 * - The URL is written with history.pushState directly, not through dcc.Location, so the page is
 *   not rebuilt for it. Back and Forward rebuild the page from the address (Dash Pages calls
 *   layout(**query)); when the address popped is the one the page was last built from, Dash would
 *   see no change, so the page is reloaded from it instead.
 */
(function () {
    "use strict";
    let lastInput = 0;
    let lastWrite = 0;
    let pending = null;
    // The pathname and search the page router last rendered (kept by the shell's callback).
    const routed = {pathname: null, search: null};

    const mark = () => { lastInput = Date.now(); };
    window.addEventListener("pointerdown", mark, true);
    window.addEventListener("keydown", mark, true);

    // Registered before dcc.Location's own listener, so `routed` is still the last render here.
    window.addEventListener("popstate", function () {
        if (pending) { clearTimeout(pending); pending = null; }
        lastWrite = Date.now();
        if (routed.pathname === window.location.pathname
                && (routed.search || "") === window.location.search) {
            window.location.reload();
        }
    });

    function encode(value) {
        if (value === null || value === undefined || value === "" || value === false) {
            return null;
        }
        if (Array.isArray(value)) {
            return value.length ? value.map(String).join(",") : null;
        }
        return String(value);
    }

    window.shelfwiseUrl = {
        routed: function (pathname, search) {
            routed.pathname = pathname;
            routed.search = search || "";
        },
        sync: function (path, names, values) {
            if (window.location.pathname !== path) {
                return window.dash_clientside.no_update;
            }
            const params = new URLSearchParams();
            names.forEach(function (name, i) {
                const text = encode(values[i]);
                if (text !== null) { params.set(name, text); }
            });
            const query = params.toString();
            const target = path + (query ? "?" + query : "");
            if (pending) { clearTimeout(pending); }
            pending = setTimeout(function () {
                pending = null;
                if (window.location.pathname !== path) { return; }
                if (window.location.pathname + window.location.search === target) { return; }
                if (lastInput > lastWrite) {
                    window.history.pushState({}, "", target);
                } else {
                    window.history.replaceState({}, "", target);
                }
                lastWrite = Date.now();
            }, 250);
            return target;
        },
    };
}());
