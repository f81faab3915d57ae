// CloudFront Function (viewer request) on the frontend's S3 behaviours. The web console lives
// under /console/ in the bucket (Vite's base; ADR 0014), as on the local gateway:
// - "/console" redirects to "/console/" (301), and so does "/" (302: the root may serve more);
// - a path under /console/ that names no file (not under assets/, no extension in its last
//   segment) is a route of the single-page app: it is served /console/index.html.
// The gateway draws the same line (services/gateway/src/gateway/console.py, is_file_path).
// A custom error response cannot do this: it would also rewrite the API's own 403 and 404.
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  if (uri === "/console") {
    return redirect(301, "Moved Permanently");
  }
  if (uri === "/") {
    return redirect(302, "Found");
  }
  if (uri.indexOf("/console/") === 0 && uri.indexOf("/console/assets/") !== 0) {
    var last = uri.substring(uri.lastIndexOf("/") + 1);
    if (last.indexOf(".") === -1) {
      request.uri = "/console/index.html";
    }
  }
  return request;
}

function redirect(status, description) {
  return {
    statusCode: status,
    statusDescription: description,
    headers: { location: { value: "/console/" }, "cache-control": { value: "no-cache" } },
  };
}
